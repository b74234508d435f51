// Reads porthole.toml: TOML syntax, then a strict walk of the tree against the field table.
// Every problem is collected rather than thrown, so the caller can report them all at once.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TomlError, parse } from 'smol-toml';
import { coerceValue, typeName } from './coerce.js';
import { CONFIG_KEYS, CONFIG_SECTIONS, type ConfigKey, fieldSpec, isConfigKey } from './schema.js';
import { findSecrets, isSecretKey, isTable } from './secrets.js';

export interface FileLayer {
  values: Map<ConfigKey, unknown>;
  /** Keys present in the file whose value was rejected. */
  rejected: Set<ConfigKey>;
  problems: string[];
  /** Dotted keys holding a secret; their values are never looked at again. */
  secrets: string[];
}

/** The file's text, undefined when `optional` and absent; a problem string when unreadable. */
export function readConfigText(file: string, optional: boolean): string | undefined | { problem: string } {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && optional) return undefined;
    if (code === 'ENOENT') return { problem: `${file}: config file not found` };
    return { problem: `${file}: cannot read config file (${code ?? String(err)})` };
  }
}

export function parseConfigFile(file: string, text: string): FileLayer {
  const layer: FileLayer = { values: new Map(), rejected: new Set(), problems: [], secrets: [] };
  let tree: Record<string, unknown>;
  try {
    tree = parse(text, { integersAsBigInt: 'asNeeded' });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // Only the first line of smol-toml's message: the rest quotes the file, which may hold a secret.
    const reason = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    layer.problems.push(`${file}:${err.line}:${err.column}: invalid TOML: ${reason}`);
    return layer;
  }
  walk(tree, '', file, layer);
  return layer;
}

function walk(table: Record<string, unknown>, prefix: string, file: string, layer: FileLayer): void {
  for (const [name, raw] of Object.entries(table)) {
    const key = prefix + name;
    if (CONFIG_SECTIONS.has(key) && isTable(raw)) {
      walk(raw, `${key}.`, file, layer);
      continue;
    }
    const secrets = findSecrets(key, raw);
    if (secrets.length > 0) {
      layer.secrets.push(...secrets);
      // A known key or a secret-named one needs no other report; an unknown table also is unknown.
      if (isConfigKey(key) || isSecretKey(name)) continue;
    }
    if (isConfigKey(key)) {
      const checked = coerceValue(fieldSpec(key), raw, { base: dirname(file) });
      if (checked.problem === undefined) layer.values.set(key, checked.value);
      else {
        layer.rejected.add(key);
        layer.problems.push(`${file}: ${key}: ${checked.problem}`);
      }
    } else if (CONFIG_SECTIONS.has(key)) {
      layer.problems.push(`${file}: ${key}: expected a table ([${key}]), got ${typeName(raw)}`);
    } else {
      // A key can be a pasted secret too (a token on a line of its own): never echo one.
      const shown = /\bph[a-z]?_[A-Za-z0-9_-]{8,}/.test(key) ? `${key.slice(0, key.indexOf('ph'))}ph…(a porthole credential; not shown)` : key;
      layer.problems.push(`${file}: unknown key "${shown}"${shown === key ? suggest(key) : ''}`);
    }
  }
}

/** " (did you mean gateway.host?)" for a near miss or a key placed in the wrong section. */
export function suggest(key: string): string {
  const name = key.slice(key.lastIndexOf('.') + 1);
  const section = key.slice(0, Math.max(0, key.lastIndexOf('.')));
  let best: { key: string; score: number } | undefined;
  for (const known of CONFIG_KEYS) {
    const knownName = known.slice(known.lastIndexOf('.') + 1);
    const knownSection = known.slice(0, Math.max(0, known.lastIndexOf('.')));
    const d = distance(name, knownName);
    if (d > 2 || d >= knownName.length) continue;
    const score = d * 2 + (knownSection === section ? 0 : 1);
    if (!best || score < best.score) best = { key: known, score };
  }
  if (!best) return '';
  const hint = best.key === 'version' ? '; top-level keys go before the first [section]' : '';
  return ` (did you mean ${best.key}?${hint})`;
}

/** Levenshtein distance, for suggestions only. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
