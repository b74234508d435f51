// The secret store (OS keyring or 0600 files) and the gateway token's lifecycle: which
// supplied token wins, first-run generation, and refusing to regenerate a lost token.
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import { readSecretFile, writeFileAtomic } from '../util/fs.js';
import type { StatePaths } from './paths.js';
import { readState, updateState } from './state.js';
import { generateToken, validateSuppliedToken } from './token.js';

export interface SecretStore {
  readonly kind: 'file' | 'keyring';
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  delete(name: string): void;
  /** Where secrets live, for messages, e.g. "file /x/secrets". Never a value. */
  describe(): string;
}

const SECRET_NAME_RE = /^[a-z0-9-]+$/;

function checkName(name: string): void {
  // The name becomes a file name: no separators, dots or traversal.
  if (!SECRET_NAME_RE.test(name)) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid secret name ${JSON.stringify(name)}: use a-z, 0-9 and -`);
  }
}

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

/**
 * Whether an OS keyring that persists across reboots is available. Not implemented on any
 * OS yet, so this is always false and the file store is used. A keyring that forgets on
 * reboot (e.g. a session-only Secret Service) would lose the token, and a lost token is
 * an error (never regenerated silently), so only a persistent one may ever be chosen.
 */
export function hasPersistentKeyring(): boolean {
  return false;
}

/** Picks the store: a persistent OS keyring when available (currently never), else the file store. */
export function openSecretStore(paths: StatePaths): SecretStore {
  // A keyring backend, when one exists, plugs in here behind hasPersistentKeyring().
  return createFileSecretStore(paths.secretsDir);
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

/** Generates a new token, stores it (replacing the old one), records issuance; returns it. */
export function rotateStoredToken(paths: StatePaths, store: SecretStore): string {
  return issueToken(paths, store);
}
