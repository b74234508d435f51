// The SecretStore kept in the OS keyring, and which keyring backend this platform has.
import { mkdirSync, realpathSync } from 'node:fs';
import { type KeyringBackend, keyringUnavailable } from './keyring.js';
import { checkSecretName, STORED_SECRET_NAMES } from './names.js';
import { isPortholeError, PortholeError } from '../errors.js';
import type { StatePaths } from './paths.js';
import { createMacosKeychainBackend } from './macos-keychain.js';
import { createSecretServiceBackend } from './secret-service.js';
import type { SecretStore } from './store.js';

export interface KeyringOptions {
  /** Default process.env: where the session bus is (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR), PATH. */
  env?: Record<string, string | undefined>;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
}

/**
 * The keyring backend for this platform, or undefined when porthole has none. macOS: the
 * Keychain through `security` (macos-keychain.ts). Linux and the BSDs: the freedesktop
 * Secret Service (GNOME Keyring, KeePassXC, KWallet) through `gdbus` and `secret-tool`.
 * Windows Credential Manager is not implemented: its stock tool takes the secret in argv
 * (`cmdkey /pass:`), and the API needs native code or PowerShell — see docs/security.md.
 */
export function keyringBackendFor(options: KeyringOptions = {}): KeyringBackend | undefined {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform === 'darwin') return createMacosKeychainBackend({ env });
  if (platform === 'win32' || platform === 'cygwin' || platform === 'android') return undefined;
  return createSecretServiceBackend({ env });
}

export function noBackendReason(platform: NodeJS.Platform = process.platform): string {
  return `porthole has no keyring backend for ${platform} (Windows Credential Manager is not implemented)`;
}

/**
 * A SecretStore in the keyring. Items are keyed by the home's real path, so two homes never
 * share a secret and a symlinked path finds the same items. With no backend (a home
 * recorded as "keyring" opened on a platform porthole has none for), every call throws
 * KEYRING_UNAVAILABLE.
 */
export function createKeyringSecretStore(paths: StatePaths, backend: KeyringBackend | undefined): SecretStore & { list(): string[] } {
  /** Also refuses a write of a name `list` would not find (see STORED_SECRET_NAMES). */
  const registered = (name: string): string => {
    checkSecretName(name);
    if (!STORED_SECRET_NAMES.includes(name)) {
      throw new PortholeError('INTERNAL', `The secret name "${name}" is not in STORED_SECRET_NAMES (src/secrets/names.ts); add it there first.`);
    }
    return name;
  };
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
    ...(backend ? { backend: backend.id } : {}),
    get: (name) => use(name, (b) => b.get(homeKey(false), name)),
    set: (name, value) => use(registered(name), (b) => b.set(homeKey(true), name, value)),
    delete: (name) => use(name, (b) => b.delete(homeKey(false), name)),
    list: () => use(undefined, (b) => b.list(homeKey(false))),
    describe: () => `keyring ${backend?.name ?? 'unavailable'}, home ${homeKey(false)}`,
  };
}
