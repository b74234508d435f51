// The environment, flag and state layers: each maps its own names onto config keys and
// checks values like the file does, naming the variable, flag or state.json in problems.
import { join } from 'node:path';
import { coerceValue, splitList } from './coerce.js';
import { type ConfigKey, fieldSpec, isConfigKey } from './schema.js';
import type { ConfigFlags } from './types.js';

export interface Layer {
  values: Map<ConfigKey, unknown>;
  /** Keys given in this layer whose value was rejected. */
  rejected: Set<ConfigKey>;
  problems: string[];
}

const emptyLayer = (): Layer => ({ values: new Map(), rejected: new Set(), problems: [] });

function accept(layer: Layer, key: ConfigKey, raw: unknown, label: string, text: boolean, base: string): void {
  const checked = coerceValue(fieldSpec(key), raw, { text, base });
  if (checked.problem === undefined) layer.values.set(key, checked.value);
  else {
    layer.rejected.add(key);
    layer.problems.push(`${label}: ${checked.problem}`);
  }
}

/** Environment variables read by the server (DESIGN §4 "Environment"). */
export const ENV_KEYS = {
  PORTHOLE_HOST: 'gateway.host',
  PORTHOLE_PORT: 'gateway.port',
  PORTHOLE_ALLOWED_ORIGINS: 'gateway.allowed_origins',
} as const satisfies Record<string, ConfigKey>;

/** An empty variable counts as unset, as shells make it easy to export one by accident. */
export function envLayer(env: Record<string, string | undefined>): Layer {
  const layer = emptyLayer();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    accept(layer, key, raw, `environment variable ${name}`, true, process.cwd());
  }
  return layer;
}

/** Each flag's config key and its spelling on the command line. */
export const FLAG_KEYS: { readonly [F in keyof Required<ConfigFlags>]: { key: ConfigKey; flag: string } } = {
  host: { key: 'gateway.host', flag: '--host' },
  port: { key: 'gateway.port', flag: '--port' },
  target: { key: 'gateway.target', flag: '--target' },
  authMode: { key: 'auth.mode', flag: '--auth-mode' },
  loopbackExempt: { key: 'auth.loopback_exempt', flag: '--no-loopback-exempt' },
  allowedOrigins: { key: 'gateway.allowed_origins', flag: '--allowed-origins' },
  publicUrl: { key: 'gateway.public_url', flag: '--public-url' },
  trustedProxies: { key: 'gateway.trusted_proxies', flag: '--trusted-proxies' },
  authTokenFile: { key: 'auth.token_file', flag: '--auth-token-file' },
  tailscale: { key: 'tailscale.mode', flag: '--tailscale' },
  tailscaleResetOnExit: { key: 'tailscale.reset_on_exit', flag: '--tailscale-reset-on-exit' },
  tunnel: { key: 'tunnel.enabled', flag: '--tunnel' },
  relay: { key: 'tunnel.relay', flag: '--relay' },
  subdomain: { key: 'tunnel.subdomain', flag: '--subdomain' },
  tls: { key: 'gateway.tls', flag: '--tls' },
  tlsCert: { key: 'gateway.tls_cert', flag: '--tls-cert' },
  tlsKey: { key: 'gateway.tls_key', flag: '--tls-key' },
};

/** Flags the caller's object holds beyond ConfigFlags (--json, --config, …) are ignored. */
export function flagLayer(flags: ConfigFlags): Layer {
  const layer = emptyLayer();
  for (const [name, { key, flag }] of Object.entries(FLAG_KEYS)) {
    let raw: unknown = flags[name as keyof ConfigFlags];
    if (raw === undefined) continue;
    // A repeated list flag arrives as an array whose items may themselves be comma lists.
    if (Array.isArray(raw) && fieldSpec(key).kind === 'string[]') {
      raw = raw.flatMap((v: unknown) => (typeof v === 'string' ? splitList(v) : [v]));
    }
    accept(layer, key, raw, `flag ${flag}`, typeof raw === 'string', process.cwd());
  }
  return layer;
}

/**
 * Console-saved settings. porthole wrote them, but the file can be edited or outlive a
 * schema change, so they are checked like file values. Null means "cleared"; relative
 * paths resolve against home, where state.json lives.
 */
export function stateLayer(state: Record<string, unknown>, home: string): Layer {
  const layer = emptyLayer();
  const file = join(home, 'state.json');
  for (const [key, raw] of Object.entries(state)) {
    if (raw === null || raw === undefined) continue;
    if (!isConfigKey(key)) layer.problems.push(`${file}: unknown setting "${key}"`);
    else accept(layer, key, raw, `${file}: ${key}`, false, home);
  }
  return layer;
}
