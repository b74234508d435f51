// `porthole config check`: every key with its effective value and where it came from, as
// a text table or as JSON. Config values hold no secrets (the loader refuses them), so
// everything may be shown.
import { CONFIG_KEYS, type ConfigKey } from './schema.js';
import type { ConfigSource, LoadedConfig } from './types.js';

type Value = string | number | boolean | string[] | null;

export interface ConfigReportJson {
  /** The config file used, or null when none was found. */
  file: string | null;
  /** Every key in table order; unset optional keys have value null. */
  values: Record<string, { value: Value; source: ConfigSource; note?: string }>;
}

function valueAt(loaded: LoadedConfig, key: ConfigKey): Value {
  let node: unknown = loaded.config;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node === undefined ? null : (node as Value);
}

function show(value: Value): string {
  if (value === null) return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.join(', ');
  return String(value);
}

/** A human table: key, value, source (with the reason for a derived default). */
export function formatConfigReport(loaded: LoadedConfig): string {
  const rows = CONFIG_KEYS.map((key) => {
    const note = loaded.notes[key];
    const source = loaded.sources[key] ?? 'default';
    return [key, show(valueAt(loaded, key)), note ? `${source} (${note})` : source] as const;
  });
  const header = ['KEY', 'VALUE', 'SOURCE'] as const;
  const w0 = Math.max(header[0].length, ...rows.map((r) => r[0].length));
  const w1 = Math.max(header[1].length, ...rows.map((r) => r[1].length));
  const line = (r: readonly [string, string, string]) => `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`.trimEnd();
  const file = `config file: ${loaded.file ?? '(none; defaults, state, environment and flags only)'}`;
  return [file, '', line(header), ...rows.map(line)].join('\n') + '\n';
}

/** The object `porthole config check --json` prints. */
export function configReportJson(loaded: LoadedConfig): ConfigReportJson {
  const values: ConfigReportJson['values'] = {};
  for (const key of CONFIG_KEYS) {
    const entry: ConfigReportJson['values'][string] = {
      value: valueAt(loaded, key),
      source: loaded.sources[key] ?? 'default',
    };
    const note = loaded.notes[key];
    if (note !== undefined) entry.note = note;
    values[key] = entry;
  }
  return { file: loaded.file ?? null, values };
}
