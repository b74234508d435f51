// Secret names: the key of a secret in every store (a file name in the file store, an
// attribute in the keyring), so one rule for all: a-z, 0-9 and -.
import { PortholeError } from '../errors.js';

export const SECRET_NAME_RE = /^[a-z0-9-]+$/;

export function checkSecretName(name: string): void {
  // The name becomes a file name: no separators, dots or traversal.
  if (!SECRET_NAME_RE.test(name)) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid secret name ${JSON.stringify(name)}: use a-z, 0-9 and -`);
  }
}

/**
 * Every secret porthole keeps. A keyring that cannot be searched by prefix (the macOS
 * Keychain through `security`) lists a home's secrets by asking for each of these, so a
 * keyring store refuses to write a name missing here: `secrets migrate` would leave it behind.
 */
export const STORED_SECRET_NAMES: readonly string[] = ['identity-key', 'password-hash', 'token', 'tunnel-registration-secret'];
