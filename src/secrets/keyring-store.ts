// The SecretStore kept in the OS keyring, and which keyring backend this platform has.
import { mkdirSync, realpathSync } from 'node:fs';
import { isPortholeError } from '../errors.js';
import { type KeyringBackend, keyringUnavailable } from './keyring.js';
import { checkSecretName } from './names.js';
import type { StatePaths } from './paths.js';
import { createSecretServiceBackend } from './secret-service.js';
import type { SecretStore } from './store.js';

export interface KeyringOptions {
  /** Default process.env: where the session bus is (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR), PATH. */
  env?: Record<string, string | undefined>;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
}

/**
 * The keyring backend for this platform, or undefined when porthole has none. Linux and
 * the BSDs: the freedesktop Secret Service (GNOME Keyring, KeePassXC, KWallet) through
 * `gdbus` and `secret-tool`. macOS Keychain and Windows Credential Manager are not
 * implemented: their stock command-line tools take the secret in argv
 * (`security add-generic-password -w`, `cmdkey /pass:`), which other local users can read.
 */
export function keyringBackendFor(options: KeyringOptions = {}): KeyringBackend | undefined {
  const platform = options.platform ?? process.platform;
  if (platform === 'darwin' || platform === 'win32' || platform === 'cygwin' || platform === 'android') return undefined;
  return createSecretServiceBackend({ env: options.env ?? process.env });
}

/** The backend's id as recorded in state.json. */
export const SECRET_SERVICE_BACKEND = 'secret-service';

export function noBackendReason(platform: NodeJS.Platform = process.platform): string {
  return `porthole has no keyring backend for ${platform} (macOS Keychain and Windows Credential Manager are not implemented)`;
}

/**
 * A SecretStore in the keyring. Items are keyed by the home's real path, so two homes never
 * share a secret and a symlinked path finds the same items. With no backend (a home
 * recorded as "keyring" opened on a platform porthole has none for), every call throws
 * KEYRING_UNAVAILABLE.
 */
export function createKeyringSecretStore(paths: StatePaths, backend: KeyringBackend | undefined): SecretStore & { list(): string[] } {
  const homeKey = (create: boolean): string => {
    if (create) mkdirSync(paths.home, { recursive: true, mode: 0o700 });
    try {
      return realpathSync(paths.home);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return paths.home;
      throw err;
    }
  };
  /** Runs a backend call; KEYRING_UNAVAILABLE gets where the secrets are and what to do. */
  const use = <T>(name: string | undefined, fn: (b: KeyringBackend) => T): T => {
    if (name !== undefined) checkSecretName(name);
    try {
      if (backend === undefined) throw keyringUnavailable(`${noBackendReason()}.`);
      return fn(backend);
    } catch (err) {
      if (!isPortholeError(err, 'KEYRING_UNAVAILABLE')) throw err;
      throw keyringUnavailable(
        `${err.message} This home (${paths.home}) keeps its secrets in the OS keyring (see ${paths.stateFile}); ` +
          'porthole does not fall back to files, where they are not. Run porthole in the desktop session that owns the ' +
          'keyring (or point DBUS_SESSION_BUS_ADDRESS at its bus) with the keyring unlocked, or supply the token with ' +
          'PORTHOLE_AUTH_TOKEN or --auth-token-file. `porthole secrets migrate --to file` moves the secrets to files ' +
          'while the keyring is reachable.',
        err,
      );
    }
  };
  return {
    kind: 'keyring',
    get: (name) => use(name, (b) => b.get(homeKey(false), name)),
    set: (name, value) => use(name, (b) => b.set(homeKey(true), name, value)),
    delete: (name) => use(name, (b) => b.delete(homeKey(false), name)),
    list: () => use(undefined, (b) => b.list(homeKey(false))),
    describe: () => `keyring ${backend?.name ?? 'unavailable'}, home ${homeKey(false)}`,
  };
}
