// The config module's public surface: load porthole.toml + env + flags + state, report it.
export { loadConfig } from './load.js';
export type { ConfigFlags, ConfigInputs, ConfigSource, LoadedConfig } from './types.js';
export {
  CONFIG_FIELDS,
  CONFIG_KEYS,
  isConfigKey,
  type AuthConfig,
  type AuthMode,
  type ConfigKey,
  type FieldKind,
  type FieldSpec,
  type GatewayConfig,
  type PortholeConfig,
  type RateLimitConfig,
  type RemoteConfig,
  type RemoteTransport,
  type TailscaleConfig,
  type TailscaleMode,
  type TunnelConfig,
} from './schema.js';
export { formatConfigReport, configReportJson, type ConfigReportJson } from './check.js';
export { ENV_KEYS, FLAG_KEYS } from './layers.js';
