// The secret store (OS keyring or 0600 files) and the gateway token's lifecycle: which
// supplied token wins, first-run generation, and refusing to regenerate a lost token.
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isPortholeError, PortholeError } from '../errors.js';
import { readSecretFile, writeFileAtomic } from '../util/fs.js';
import { keyringUnavailable } from './keyring.js';
import { checkSecretName, SECRET_NAME_RE } from './names.js';
import { createKeyringSecretStore, keyringBackendFor, noBackendReason } from './keyring-store.js';
import type { StatePaths } from './paths.js';
import { readState, updateState } from './state.js';
import { generateToken, validateSuppliedToken } from './token.js';

export interface SecretStore {
  readonly kind: 'file' | 'keyring';
  /** A keyring store's backend id (recorded in state.json), e.g. "secret-service". */
  readonly backend?: string;
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  delete(name: string): void;
  /** Where secrets live, for messages, e.g. "file /x/secrets". Never a value. */
  describe(): string;
}

const checkName = checkSecretName;

/**
 * File store: one 0600 file per secret in `secretsDir` (kept 0700). Reads refuse files
 * others can access (SECRET_FILE_INSECURE); writes are atomic.
 */
export function createFileSecretStore(secretsDir: string): SecretStore {
  return {
    kind: 'file',
    get(name) {
      checkName(name);
      return readSecretFile(join(secretsDir, name));
    },
    set(name, value) {
      checkName(name);
      // readSecretFile trims one trailing newline, so this round-trips any value.
      writeFileAtomic(join(secretsDir, name), value + '\n', { mode: 0o600, dirMode: 0o700 });
    },
    delete(name) {
      checkName(name);
      try {
        unlinkSync(join(secretsDir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    },
    describe() {
      return `file ${secretsDir}`;
    },
  };
}

export type SecretStoreMode = 'auto' | 'file' | 'keyring';

export interface OpenSecretStoreOptions {
  /**
   * Default process.env. Read: PORTHOLE_SECRET_STORE (auto | file | keyring, default auto),
   * and the session bus variables and PATH the keyring backend needs.
   */
  env?: Record<string, string | undefined>;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
}

/**
 * Whether an OS keyring that persists across reboots is usable now: on Linux, a Secret
 * Service whose default collection is on disk (not the in-memory session collection) and
 * unlocked. A keyring that forgets on reboot would lose the token, and a lost token is an
 * error (never regenerated silently), so only a persistent one is ever chosen.
 */
export function hasPersistentKeyring(options: OpenSecretStoreOptions = {}): boolean {
  return keyringBackendFor(options)?.probe().ok ?? false;
}

/** PORTHOLE_SECRET_STORE, checked. Empty counts as unset. */
export function secretStoreMode(env: Record<string, string | undefined> = process.env): SecretStoreMode {
  const v = env['PORTHOLE_SECRET_STORE'];
  if (!v) return 'auto';
  if (v === 'auto' || v === 'file' || v === 'keyring') return v;
  throw new PortholeError('CONFIG_INVALID', `PORTHOLE_SECRET_STORE=${JSON.stringify(v)} is not one of auto, file, keyring.`);
}

/**
 * Opens this home's secret store. The choice is sticky: once a secret has been written,
 * state.json records the store (`secretStore`), and that store is used from then on — a
 * home recorded as "keyring" whose keyring cannot be reached fails with
 * KEYRING_UNAVAILABLE instead of falling back to files, where its token is not. A home
 * that already has files in secrets/ (or a token recorded as "file") stays on files.
 * A new home: PORTHOLE_SECRET_STORE=file → files; =keyring → the keyring or
 * KEYRING_UNAVAILABLE; auto (default) → the keyring when hasPersistentKeyring(), else files.
 * The choice is recorded at the first write, never by merely opening or reading.
 * PORTHOLE_SECRET_STORE contradicting the recorded store is CONFIG_INVALID (move the
 * secrets with `porthole secrets migrate`).
 */
export function openSecretStore(paths: StatePaths, options: OpenSecretStoreOptions = {}): SecretStore {
  const env = options.env ?? process.env;
  const mode = secretStoreMode(env);
  const current = currentStoreKind(paths);
  if (current !== undefined) {
    if (mode !== 'auto' && mode !== current.kind) {
      throw new PortholeError(
        'CONFIG_INVALID',
        `PORTHOLE_SECRET_STORE=${mode}, but this home (${paths.home}) keeps its secrets in the ${current.kind} store ` +
          `(${current.why}). Unset PORTHOLE_SECRET_STORE, or move the secrets with \`porthole secrets migrate --to ${mode}\`.`,
      );
    }
    const backend = current.kind === 'keyring' ? keyringBackendFor(options) : undefined;
    if (backend && current.backend && current.backend !== backend.id) {
      // A home moved between systems: its secrets are in a keyring this one does not have.
      throw keyringUnavailable(
        `This home (${paths.home}) keeps its secrets in the ${current.backend} keyring (${current.why}), which is not this system's (${backend.id}). ` +
          'Use the home on the system it was made on, or supply the token with PORTHOLE_AUTH_TOKEN or --auth-token-file.',
      );
    }
    const store = current.kind === 'keyring' ? createKeyringSecretStore(paths, backend) : createFileSecretStore(paths.secretsDir);
    return current.recorded ? store : recordOnWrite(paths, store);
  }
  if (mode === 'file') return recordOnWrite(paths, createFileSecretStore(paths.secretsDir));
  const backend = keyringBackendFor(options);
  const probe = backend?.probe() ?? { ok: false as const, reason: noBackendReason(options.platform) };
  if (probe.ok) {
    const keyring = recordOnWrite(paths, createKeyringSecretStore(paths, backend));
    return mode === 'auto' ? keyringOrFiles(keyring, () => recordOnWrite(paths, createFileSecretStore(paths.secretsDir))) : keyring;
  }
  if (mode === 'keyring') {
    throw keyringUnavailable(
      `PORTHOLE_SECRET_STORE=keyring, but the OS keyring cannot be used: ${probe.reason}. ` +
        'Unlock or start the keyring, or use PORTHOLE_SECRET_STORE=auto (files when no persistent keyring is available).',
    );
  }
  return recordOnWrite(paths, createFileSecretStore(paths.secretsDir));
}

/** Which store this home uses already, if any, and why (for messages). */
function currentStoreKind(paths: StatePaths): { kind: 'file' | 'keyring'; backend?: string; recorded: boolean; why: string } | undefined {
  const state = readState(paths);
  if (state.secretStore) {
    const { kind, backend } = state.secretStore;
    return { kind, ...(backend ? { backend } : {}), recorded: true, why: `recorded in ${paths.stateFile}` };
  }
  // Homes from before the choice was recorded: the token's record, or files already there.
  if (state.token) return { kind: state.token.store, recorded: false, why: `its token is recorded in ${paths.stateFile}` };
  if (hasStoredFiles(paths.secretsDir)) return { kind: 'file', recorded: false, why: `${paths.secretsDir} holds secrets` };
  return undefined;
}

/** Names of the secrets in the file store (regular files named like secrets). */
export function listFileSecrets(secretsDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(secretsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => SECRET_NAME_RE.test(n)).sort();
}

function hasStoredFiles(secretsDir: string): boolean {
  return listFileSecrets(secretsDir).length > 0;
}

/**
 * A new home in auto mode: the keyring its probe found usable, unless the keyring fails
 * (KEYRING_UNAVAILABLE) before the first secret is stored in it — a keychain that answers a
 * search but is locked for reading or writing, say. Then files, as auto would have chosen,
 * recorded at their first write. Only until that first write: after it the home's store is
 * recorded and never changes by itself.
 */
function keyringOrFiles(keyring: SecretStore, files: () => SecretStore): SecretStore & { list?(): string[] } {
  let store: SecretStore & { list?(): string[] } = keyring;
  let settled = false;
  const fallback = <T>(fn: () => T): T => {
    if (settled) return fn();
    try {
      return fn();
    } catch (err) {
      if (!isPortholeError(err, 'KEYRING_UNAVAILABLE') || store !== keyring) throw err;
      store = files();
      return fn();
    }
  };
  return {
    get kind() {
      return store.kind;
    },
    get backend() {
      return store.backend;
    },
    get: (name) => fallback(() => store.get(name)),
    set(name, value) {
      fallback(() => store.set(name, value));
      settled = true;
    },
    delete: (name) => fallback(() => store.delete(name)),
    list: () => fallback(() => store.list?.() ?? []),
    describe: () => store.describe(),
  };
}

/** Wraps a store so that its first write records it in state.json (after the write succeeds). */
function recordOnWrite(paths: StatePaths, store: SecretStore): SecretStore {
  let recorded = false;
  return {
    ...store,
    kind: store.kind,
    set(name, value) {
      store.set(name, value);
      if (recorded) return;
      recordStore(paths, store.kind, store.backend);
      recorded = true;
    },
  };
}

/** Records the store holding this home's secrets (and, for a keyring, which backend). */
export function recordStore(paths: StatePaths, kind: 'file' | 'keyring', backend?: string): void {
  updateState(paths, (s) => {
    s.secretStore = { kind, ...(kind === 'keyring' && backend ? { backend } : {}), since: new Date().toISOString() };
  });
}

export type TokenSource = 'flag' | 'flag-file' | 'env' | 'config-file' | 'store';

export interface ResolvedToken {
  token: string;
  source: TokenSource;
  /** True when this call issued the token (first run). */
  generated: boolean;
  /** Where it came from, e.g. "--auth-token-file /x" — never the value. */
  describe: string;
}

export interface ResolveTokenOptions {
  paths: StatePaths;
  store: SecretStore;
  flags?: { authToken?: string; authTokenFile?: string };
  /** Default process.env. */
  env?: Record<string, string | undefined>;
  /** [auth] token_file from porthole.toml, already resolved against the config file's directory. */
  configTokenFile?: string;
  /** Issue and store a token when none exists and none was ever issued (`porthole init`, first `serve`). */
  create: boolean;
}

const STORE_KEY = 'token';
const ROTATE_HINT = 'Run `porthole token rotate` (or `porthole init --rotate-token`) to issue a new one';

/**
 * The gateway token. Precedence: --auth-token > --auth-token-file > PORTHOLE_AUTH_TOKEN >
 * [auth] token_file > the secret store. Supplied tokens must pass validateSuppliedToken.
 * With nothing in the store: if state.json records an issued token, TOKEN_MISSING (clients
 * hold that token; silently issuing another would lock them out, or hide tampering);
 * otherwise generate one when `create`, else TOKEN_MISSING.
 */
export function resolveToken(opts: ResolveTokenOptions): ResolvedToken {
  const { paths, store, flags = {} } = opts;
  const env = opts.env ?? process.env;

  if (flags.authToken !== undefined) {
    return supplied(validateSuppliedToken(flags.authToken, '--auth-token'), 'flag', '--auth-token');
  }
  if (flags.authTokenFile !== undefined) {
    const where = `--auth-token-file ${flags.authTokenFile}`;
    return supplied(readTokenFile(flags.authTokenFile, where), 'flag-file', where);
  }
  // Empty counts as unset, as service managers often pass empty variables.
  const fromEnv = env['PORTHOLE_AUTH_TOKEN'];
  if (fromEnv) {
    return supplied(validateSuppliedToken(fromEnv, 'PORTHOLE_AUTH_TOKEN'), 'env', 'PORTHOLE_AUTH_TOKEN');
  }
  if (opts.configTokenFile !== undefined) {
    const where = `[auth] token_file ${opts.configTokenFile}`;
    return supplied(readTokenFile(opts.configTokenFile, where), 'config-file', where);
  }

  const where = `secret store (${store.describe()})`;
  const stored = store.get(STORE_KEY);
  if (stored !== undefined) return supplied(validateSuppliedToken(stored, where), 'store', where);

  const issued = readState(paths).token;
  if (issued !== undefined) {
    throw new PortholeError(
      'TOKEN_MISSING',
      `The gateway token issued ${issued.issuedAt} (kept in the ${issued.store} store) is missing from the ${where}. ` +
        `porthole does not issue a new one silently: clients holding the old token would stop working. ${ROTATE_HINT}, ` +
        'or restore the old token.',
    );
  }
  if (!opts.create) {
    throw new PortholeError(
      'TOKEN_MISSING',
      `No gateway token in the ${where}. Run \`porthole init\` to create one, or supply one with ` +
        '--auth-token-file, PORTHOLE_AUTH_TOKEN or [auth] token_file.',
    );
  }
  return { token: issueToken(paths, store), source: 'store', generated: true, describe: where };
}

function supplied(token: string, source: TokenSource, describe: string): ResolvedToken {
  return { token, source, generated: false, describe };
}

function readTokenFile(file: string, where: string): string {
  const token = readSecretFile(file);
  if (token === undefined) {
    throw new PortholeError('SECRET_FILE_UNREADABLE', `Token file ${file} (from ${where}) does not exist.`);
  }
  return validateSuppliedToken(token, where);
}

/** Stores a fresh token, then records the issuance; a crash in between leaves a usable token. */
function issueToken(paths: StatePaths, store: SecretStore): string {
  const token = generateToken();
  store.set(STORE_KEY, token);
  updateState(paths, (s) => {
    s.token = { issuedAt: new Date().toISOString(), store: store.kind };
  });
  return token;
}

/**
 * Takes back a token issued by a start that then failed (port in use, a bad TLS file): nobody
 * has seen it, and the next start should generate — and show — one of its own.
 */
export function withdrawIssuedToken(paths: StatePaths, store: SecretStore): void {
  store.delete(STORE_KEY);
  updateState(paths, (s) => {
    delete s.token;
  });
}

/** Generates a new token, stores it (replacing the old one), records issuance; returns it. */
export function rotateStoredToken(paths: StatePaths, store: SecretStore): string {
  return issueToken(paths, store);
}
