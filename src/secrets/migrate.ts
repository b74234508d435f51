// `porthole secrets migrate --to file|keyring`: the only way a home's secrets change store.
// Never automatic: a home that silently moved would leave its token where a later run (over
// SSH, with the keyring locked) could not find it.
import { PortholeError } from '../errors.js';
import { keyringUnavailable } from './keyring.js';
import { createKeyringSecretStore, keyringBackendFor, noBackendReason } from './keyring-store.js';
import type { StatePaths } from './paths.js';
import { readState, updateState } from './state.js';
import { createFileSecretStore, listFileSecrets, type OpenSecretStoreOptions, openSecretStore, recordStore, type SecretStore } from './store.js';

export interface MigrateResult {
  from: 'file' | 'keyring';
  to: 'file' | 'keyring';
  /** Names of the secrets moved (never values). */
  moved: string[];
}

/**
 * Moves every secret of this home to the `to` store: copy, read back and compare, record
 * the new store in state.json, then delete the old copies. A crash before the record
 * leaves the old store in force and intact (the copies are overwritten by the next try);
 * after it, at worst stale old copies remain. Stop the gateway first: it keeps the store
 * it opened. PORTHOLE_SECRET_STORE is ignored here: this is the explicit move it asks for.
 */
export function migrateSecrets(paths: StatePaths, to: 'file' | 'keyring', options: OpenSecretStoreOptions = {}): MigrateResult {
  const env = { ...(options.env ?? process.env), PORTHOLE_SECRET_STORE: 'auto' };
  const source = openSecretStore(paths, { ...options, env }) as SecretStore & { list?(): string[] };
  const from = source.kind;
  const names = from === 'file' ? listFileSecrets(paths.secretsDir) : (source.list?.() ?? []);
  if (from === to) {
    // Nothing to move; make the choice explicit, so it is sticky from now on.
    recordStore(paths, to, source.backend);
    return { from, to, moved: [] };
  }
  let target: SecretStore;
  if (to === 'file') target = createFileSecretStore(paths.secretsDir);
  else {
    const backend = keyringBackendFor({ ...options, env });
    const probe = backend?.probe() ?? { ok: false as const, reason: noBackendReason(options.platform) };
    if (!probe.ok) throw keyringUnavailable(`Cannot move the secrets to the OS keyring: ${probe.reason}.`);
    target = createKeyringSecretStore(paths, backend);
  }
  for (const name of names) {
    const value = source.get(name);
    if (value === undefined) continue;
    target.set(name, value);
    if (target.get(name) !== value) {
      throw new PortholeError('INTERNAL', `The secret "${name}" did not read back the same from the ${to} store; nothing was moved.`);
    }
  }
  recordStore(paths, to, target.backend);
  if (readState(paths).token) {
    updateState(paths, (s) => {
      if (s.token) s.token.store = to;
    });
  }
  for (const name of names) source.delete(name);
  return { from, to, moved: names };
}
