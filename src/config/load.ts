// loadConfig: strict parse of porthole.toml, then env, flags and state.json, merged by
// precedence (flag > env > file > state > default) with the source of every key recorded.
// Problems from every layer are collected and thrown together, as one PortholeError.
import { join, resolve } from 'node:path';
import { PortholeError } from '../errors.js';
import { type FileLayer, parseConfigFile, readConfigText } from './file.js';
import { type Layer, envLayer, flagLayer, stateLayer } from './layers.js';
import { CONFIG_KEYS, type ConfigKey, type PortholeConfig, fieldSpec } from './schema.js';
import { secretInFileError } from './secrets.js';
import type { ConfigInputs, ConfigSource, LoadedConfig } from './types.js';

export type { ConfigFlags, ConfigInputs, ConfigSource, LoadedConfig } from './types.js';

export function loadConfig(inputs: ConfigInputs): LoadedConfig {
  const explicit = inputs.configFile !== undefined;
  const candidate = resolve(inputs.configFile ?? join(inputs.home, 'porthole.toml'));
  const text = readConfigText(candidate, !explicit);
  let file: string | undefined;
  let fileLayer: FileLayer = { values: new Map(), rejected: new Set(), problems: [], secrets: [] };
  if (typeof text === 'object') fileLayer.problems.push(text.problem);
  else if (text !== undefined) {
    file = candidate;
    fileLayer = parseConfigFile(candidate, text);
  }

  const layers: [ConfigSource, Layer][] = [
    ['flag', flagLayer(inputs.flags ?? {})],
    ['env', envLayer(inputs.env ?? process.env)],
    ['file', fileLayer],
    ['state', stateLayer(inputs.state ?? {}, inputs.home)],
  ];
  const values = new Map<ConfigKey, unknown>();
  const sources: Record<string, ConfigSource> = {};
  const rejected = new Set<ConfigKey>();
  for (const key of CONFIG_KEYS) {
    const hit = layers.find(([, layer]) => layer.values.has(key));
    values.set(key, hit ? hit[1].values.get(key) : fieldSpec(key).default);
    sources[key] = hit ? hit[0] : 'default';
    for (const [, layer] of layers) if (layer.rejected.has(key)) rejected.add(key);
  }

  const notes: Record<string, string> = {};
  deriveLoopbackExempt(values, sources, notes);
  // Problems in reading order: the file, then state, env, flags; cross-key checks last.
  const problems = [3, 2, 1, 0].flatMap((i) => layers[i]![1].problems);
  problems.push(...crossCheck(values, sources, rejected));

  const label = file ?? (explicit ? candidate : 'configuration');
  if (fileLayer.secrets.length > 0) throw secretInFileError(label, fileLayer.secrets, problems);
  if (problems.length > 0) {
    const n = problems.length;
    const more = n > 1 ? ` (and ${n - 1} more)` : '';
    throw new PortholeError('CONFIG_INVALID', `${label}: ${n} problem${n > 1 ? 's' : ''}: ${problems[0]}${more}`, {
      details: problems,
    });
  }
  return { config: build(values), sources, notes, file };
}

/**
 * auth.loopback_exempt defaults to true, but to false once a public URL or trusted proxies
 * are configured: a reverse proxy on the same host connects from loopback, so every visitor
 * it forwards would otherwise look local (DESIGN §2). Any explicit setting wins.
 */
function deriveLoopbackExempt(
  values: Map<ConfigKey, unknown>,
  sources: Record<string, ConfigSource>,
  notes: Record<string, string>,
): void {
  if (sources['auth.loopback_exempt'] !== 'default') return;
  const because =
    values.get('gateway.public_url') !== undefined
      ? 'gateway.public_url'
      : (values.get('gateway.trusted_proxies') as string[]).length > 0
        ? 'gateway.trusted_proxies'
        : undefined;
  if (because === undefined) return;
  values.set('auth.loopback_exempt', false);
  notes['auth.loopback_exempt'] =
    `false because ${because} is set: a proxy on this host would make its visitors look local`;
}

const layerRank = (source: ConfigSource | undefined): number => ['default', 'state', 'file', 'env', 'flag'].indexOf(source ?? 'default');

/** Checks that span keys; skipped for keys already reported, to avoid knock-on noise. */
function crossCheck(
  values: Map<ConfigKey, unknown>,
  sources: Record<string, ConfigSource>,
  rejected: Set<ConfigKey>,
): string[] {
  const problems: string[] = [];
  const clean = (...keys: ConfigKey[]) => keys.every((k) => !rejected.has(k));
  const from = (key: ConfigKey) => `${key} (${sources[key]})`;
  if (
    clean('auth.mode', 'gateway.trusted_proxies') &&
    values.get('auth.mode') === 'trusted-proxy' &&
    (values.get('gateway.trusted_proxies') as string[]).length === 0
  ) {
    problems.push(
      `${from('auth.mode')} is "trusted-proxy" but gateway.trusted_proxies is empty: ` +
        'list the proxy addresses allowed to name the user',
    );
  }
  if (
    clean('auth.session_idle', 'auth.session_max') &&
    (values.get('auth.session_idle') as number) > (values.get('auth.session_max') as number)
  ) {
    problems.push(`${from('auth.session_idle')} is longer than ${from('auth.session_max')}`);
  }
  const hasCert = values.get('tunnel.tls_cert') !== undefined;
  if (clean('tunnel.tls_cert', 'tunnel.tls_key') && hasCert !== (values.get('tunnel.tls_key') !== undefined)) {
    problems.push('tunnel.tls_cert and tunnel.tls_key go together: set both or neither');
  }
  // gateway.tls vs the cert/key files: the higher layer wins (src/tls/gateway-cert.ts tlsChoiceFromConfig).
  const hasGatewayCert = values.get('gateway.tls_cert') !== undefined;
  if (clean('gateway.tls_cert', 'gateway.tls_key') && hasGatewayCert !== (values.get('gateway.tls_key') !== undefined)) {
    problems.push('gateway.tls_cert and gateway.tls_key go together: set both or neither');
  } else if (
    clean('gateway.tls', 'gateway.tls_cert', 'gateway.tls_key') &&
    hasGatewayCert &&
    sources['gateway.tls'] !== 'default' &&
    layerRank(sources['gateway.tls']) === Math.max(layerRank(sources['gateway.tls_cert']), layerRank(sources['gateway.tls_key']))
  ) {
    problems.push(`${from('gateway.tls')} = "${String(values.get('gateway.tls'))}" contradicts gateway.tls_cert/tls_key in the same layer: keep one`);
  }
  return problems;
}

/** Dotted keys → the nested PortholeConfig; unset optional keys are left out. */
function build(values: Map<ConfigKey, unknown>): PortholeConfig {
  const root: Record<string, unknown> = {};
  for (const [key, value] of values) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    if (value !== undefined) node[parts.at(-1)!] = Array.isArray(value) ? [...value] : value;
  }
  return root as unknown as PortholeConfig;
}
