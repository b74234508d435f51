// The tunnel's registration secret as the API shows and sets it: GET /_porthole/api/tunnel
// carries `secret: {set, source, masked}` and POST /_porthole/api/tunnel/secret stores a new
// one. The value never leaves: `masked` shows at most its first and last 2 characters, and
// only for a secret of 16 characters or more (so at most 4 of ≥ 16 are visible — enough to
// tell two secrets apart, far too few to guess the rest).
import { PortholeError } from '../../errors.js';
import type { StatePaths } from '../../secrets/paths.js';
import type { SecretStore } from '../../secrets/store.js';
import { SECRET_STORE_KEY } from '../../tunnel/manager.js';
import { appendAudit } from '../../util/audit.js';

export const REGISTRATION_SECRET_ENV = 'PORTHOLE_TUNNEL_REGISTRATION_SECRET';
const MIN = 16;
const MAX = 1024;

export interface RegistrationSecretInfo {
  /** A real secret is configured (not the loopback-only dev default). */
  set: boolean;
  /** Which one the tunnel uses: the environment wins over the store; else the dev default. */
  source: 'env' | 'store' | 'dev-default';
  /** "ab…yz" for a secret of ≥ 16 characters; null otherwise. */
  masked: string | null;
}

export interface RegistrationSecretAccess {
  info(): RegistrationSecretInfo;
  /** Stores a new secret (checked by checkRegistrationSecret); a running tunnel uses it from its next attempt. */
  set(secret: unknown, actor?: { by: string; cred: string }): RegistrationSecretInfo;
}

/** ≥ 16 and ≤ 1024 printable ASCII characters, no whitespace; else INVALID_ARGUMENT. */
export function checkRegistrationSecret(secret: unknown): string {
  if (typeof secret !== 'string' || secret.length < MIN || secret.length > MAX || !/^[\x21-\x7e]+$/.test(secret)) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      `the registration secret must be ${MIN} to ${MAX} printable characters without whitespace`,
    );
  }
  return secret;
}

export function maskSecret(secret: string | undefined): string | null {
  if (secret === undefined || secret.length < MIN) return null;
  return `${secret.slice(0, 2)}…${secret.slice(-2)}`;
}

export function createRegistrationSecretAccess(o: {
  store: SecretStore;
  env: Record<string, string | undefined>;
  paths: StatePaths;
  /** A new secret was stored: hand it to the running tunnel (TunnelManager.useSecret). */
  onChange?: (secret: string) => void;
}): RegistrationSecretAccess {
  // A keyring read is a synchronous child process (secret-tool, security): the status API must
  // not run one per request. The store is read once; every change goes through `set` (the
  // console, and `porthole tunnel secret set`, which hands the secret to the running gateway).
  let cached: { stored: string | undefined } | undefined;
  function info(): RegistrationSecretInfo {
    const fromEnv = o.env[REGISTRATION_SECRET_ENV];
    if (fromEnv) return { set: true, source: 'env', masked: maskSecret(fromEnv) };
    cached ??= { stored: o.store.get(SECRET_STORE_KEY) };
    const stored = cached.stored;
    if (stored) return { set: true, source: 'store', masked: maskSecret(stored) };
    return { set: false, source: 'dev-default', masked: null };
  }
  return {
    info,
    set(secret, actor) {
      const value = checkRegistrationSecret(secret);
      cached = undefined;
      o.store.set(SECRET_STORE_KEY, value);
      cached = { stored: value };
      appendAudit(o.paths.auditLog, 'tunnel secret set', { store: o.store.kind, ...actor });
      o.onChange?.(value);
      return info();
    },
  };
}
