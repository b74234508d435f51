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
  /** Settings saved from the console or CLI; used only for keys porthole.toml does not set. */
  settings?: Record<string, unknown>;
  [k: string]: unknown;
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
  return state as PortholeState;
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
