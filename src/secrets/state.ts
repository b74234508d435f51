// porthole's own record, state.json: what porthole itself writes (token issuance, consent,
// console-saved settings). Never secrets. porthole.toml stays the user's and is never rewritten.
import { readFileSync } from 'node:fs';
import { PortholeError } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { StatePaths } from './paths.js';

export interface PortholeState {
  version: 1;
  /** Set once a token has been issued, so a token that later disappears is an error, not a silent regeneration. */
  token?: { issuedAt: string; store: 'file' | 'keyring' };
  /**
   * Which store holds this home's secrets, recorded with the first secret written. Sticky:
   * a home recorded as "keyring" fails with KEYRING_UNAVAILABLE rather than fall back to
   * files (where the token is not). Changed only by `porthole secrets migrate`.
   */
  secretStore?: RecordedSecretStore;
  /** Settings saved from the console or CLI; used only for keys porthole.toml does not set. */
  settings?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface RecordedSecretStore {
  kind: 'file' | 'keyring';
  /** The keyring backend, e.g. "secret-service"; only with kind "keyring". */
  backend?: string;
  /** When this store was chosen (ISO 8601). */
  since: string;
}

/** Reads state.json. Missing → `{ version: 1 }`; unparsable or unknown version → CONFIG_INVALID. */
export function readState(paths: StatePaths): PortholeState {
  let text: string;
  try {
    text = readFileSync(paths.stateFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1 };
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(paths, 'is not valid JSON', err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(paths, 'is not a JSON object');
  }
  const state = value as Record<string, unknown>;
  if (state['version'] !== 1) {
    throw invalid(paths, `has version ${JSON.stringify(state['version'])}; this porthole reads version 1`);
  }
  const token = state['token'];
  if (token !== undefined && (typeof token !== 'object' || token === null || Array.isArray(token))) {
    throw invalid(paths, 'has a malformed "token" entry');
  }
  const store = state['secretStore'];
  if (store !== undefined && !isRecordedStore(store)) throw invalid(paths, 'has a malformed "secretStore" entry');
  return state as PortholeState;
}

function isRecordedStore(v: unknown): v is RecordedSecretStore {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  if (r['kind'] !== 'file' && r['kind'] !== 'keyring') return false;
  if (r['backend'] !== undefined && typeof r['backend'] !== 'string') return false;
  return typeof r['since'] === 'string';
}

function invalid(paths: StatePaths, problem: string, cause?: unknown): PortholeError {
  return new PortholeError(
    'CONFIG_INVALID',
    `${paths.stateFile} ${problem}. It is written by porthole; restore it from a backup or remove it ` +
      '(porthole then forgets console-saved settings and consent).',
    { cause },
  );
}

/**
 * Read-modify-write of state.json, written atomically with mode 0600. Not locked: two
 * processes updating at the same instant can lose one update, acceptable for rare,
 * user-driven writes.
 */
export function updateState(paths: StatePaths, mutate: (s: PortholeState) => void): PortholeState {
  const state = readState(paths);
  mutate(state);
  state.version = 1;
  writeFileAtomic(paths.stateFile, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  return state;
}
