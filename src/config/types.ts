// The inputs and result of loadConfig, kept apart so the layer readers and the loader
// share them without importing each other.
import type { PortholeConfig } from './schema.js';

/** Where a value came from, highest precedence first: flag > env > file > state > default. */
export type ConfigSource = 'flag' | 'env' | 'file' | 'state' | 'default';

/**
 * Command-line values, as the CLI parsed them. Undefined means "not given". Strings are
 * parsed like environment values (numbers, comma lists); relative paths resolve against
 * the working directory.
 */
export interface ConfigFlags {
  host?: string;
  port?: number | string;
  target?: string;
  authMode?: string;
  loopbackExempt?: boolean;
  allowedOrigins?: string[] | string;
  publicUrl?: string;
  trustedProxies?: string[] | string;
  authTokenFile?: string;
  tailscale?: string;
  tailscaleResetOnExit?: boolean;
  tunnel?: boolean;
  relay?: string;
  subdomain?: string;
  tls?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export interface ConfigInputs {
  /** $PORTHOLE_HOME: holds porthole.toml when no --config is given. */
  home: string;
  /** Explicit --config: must exist. */
  configFile?: string;
  /** Environment; default process.env. */
  env?: Record<string, string | undefined>;
  flags?: ConfigFlags;
  /** Console-saved settings from state.json, dotted keys like "gateway.public_url". */
  state?: Record<string, unknown>;
}

export interface LoadedConfig {
  config: PortholeConfig;
  /** Dotted key → where its value came from, for every leaf key. */
  sources: Record<string, ConfigSource>;
  /** Dotted key → why a default was derived rather than fixed (auth.loopback_exempt). */
  notes: Record<string, string>;
  /** Path of the config file used, if any. */
  file: string | undefined;
}
