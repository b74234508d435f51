// Secrets feature: state paths, tokens, the secret store and porthole's state.json.
export {
  DEFAULT_APP_NAME,
  MAX_SOCKET_PATH_BYTES,
  ensureSocketDir,
  resolveHome,
  statePaths,
} from './paths.js';
export type { ResolveHomeOptions, StatePaths, StatePathsOptions } from './paths.js';
export {
  CODE_PREFIX,
  MIN_SUPPLIED_TOKEN_CHARS,
  TOKEN_PREFIX,
  digest,
  generateCode,
  generateToken,
  isPortholeCode,
  isPortholeToken,
  secretEquals,
  validateSuppliedToken,
} from './token.js';
export { readState, updateState } from './state.js';
export type { PortholeState, RecordedSecretStore } from './state.js';
export {
  createFileSecretStore,
  hasPersistentKeyring,
  listFileSecrets,
  openSecretStore,
  resolveToken,
  rotateStoredToken,
  secretStoreMode,
} from './store.js';
export type {
  OpenSecretStoreOptions,
  ResolveTokenOptions,
  ResolvedToken,
  SecretStore,
  SecretStoreMode,
  TokenSource,
} from './store.js';
export { createKeyringSecretStore, keyringBackendFor } from './keyring-store.js';
export type { KeyringOptions } from './keyring-store.js';
export type { KeyringBackend, KeyringProbe } from './keyring.js';
export { migrateSecrets } from './migrate.js';
export type { MigrateResult } from './migrate.js';
export {
  ensureDir,
  ensureOwnedPrivateDir,
  formatMode,
  readSecretFile,
  writeFileAtomic,
} from '../util/fs.js';
export type { WriteFileAtomicOptions } from '../util/fs.js';
