// Turns one raw value into a checked config value by its field's spec: type, choices,
// bounds, grammar, path resolution. Raw values come typed (TOML, state.json, boolean flags)
// or as text (environment variables, string flags), which is parsed here first.
import { isAbsolute, resolve } from 'node:path';
import { type Checked, bad, ok, quote } from './validate.js';
import type { FieldSpec } from './schema.js';

export interface CoerceOptions {
  /** The raw value is text from the environment or a flag: parse numbers and lists. */
  text?: boolean;
  /** Directory relative paths are resolved against. */
  base: string;
}

/** A value's type as a config author thinks of it, for "expected X, got Y". */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'bigint') return 'an integer';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  if (typeof value === 'object') return 'a table';
  return `a ${typeof value}`;
}

function expected(spec: FieldSpec, text: boolean): string {
  switch (spec.kind) {
    case 'string':
      return spec.choices ? `one of ${spec.choices.map((c) => `"${c}"`).join(', ')}` : 'a string';
    case 'integer':
      if (spec.max !== undefined) return `an integer from ${spec.min ?? 0} to ${spec.max}`;
      return spec.min !== undefined ? `an integer ≥ ${spec.min}` : 'an integer';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'string[]':
      return text ? 'a comma-separated list' : 'an array of strings';
  }
}

/** Text → typed value; anything that does not parse is left as text for the type check to name. */
function fromText(spec: FieldSpec, raw: string): unknown {
  const s = raw.trim();
  switch (spec.kind) {
    case 'integer':
      return /^\+?\d+$/.test(s) ? Number(s) : raw;
    case 'number':
      return /^\+?(\d+\.?\d*|\.\d+)$/.test(s) ? Number(s) : raw;
    case 'boolean':
      return s === 'true' ? true : s === 'false' ? false : raw;
    case 'string[]':
      return splitList(s);
    default:
      return s;
  }
}

export function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

export function coerceValue(spec: FieldSpec, raw: unknown, opts: CoerceOptions): Checked<unknown> {
  const text = opts.text === true;
  const value = text && typeof raw === 'string' ? fromText(spec, raw) : raw;
  const wrong = (): Checked<never> =>
    bad(`expected ${expected(spec, text)}, got ${typeof value === 'string' && text ? quote(value) : typeof value === 'number' ? String(value) : typeName(value)}`);

  switch (spec.kind) {
    case 'boolean':
      return typeof value === 'boolean' ? ok(value) : wrong();
    case 'integer': {
      const n = typeof value === 'bigint' ? value : Number.isInteger(value) ? BigInt(value as number) : undefined;
      if (n === undefined) return wrong();
      if ((spec.min !== undefined && n < BigInt(spec.min)) || (spec.max !== undefined && n > BigInt(spec.max))) {
        return bad(`expected ${expected(spec, text)}, got ${n}`);
      }
      return finish(spec, Number(n), opts);
    }
    case 'number': {
      const n = typeof value === 'bigint' ? Number(value) : value;
      return typeof n === 'number' && Number.isFinite(n) ? finish(spec, n, opts) : wrong();
    }
    case 'string':
      if (typeof value !== 'string') return wrong();
      if (value.trim() === '') return bad('must not be empty');
      if (spec.choices && !spec.choices.includes(value)) return bad(`expected ${expected(spec, text)}, got ${quote(value)}`);
      return finish(spec, value, opts);
    case 'string[]': {
      if (!Array.isArray(value)) return wrong();
      // Every bad item is named, so one pass over the file finds them all.
      const out: string[] = [];
      const problems: string[] = [];
      for (const [i, item] of value.entries()) {
        const checked: Checked<string> =
          typeof item !== 'string'
            ? bad(`expected a string, got ${typeName(item)}`)
            : item.trim() === ''
              ? bad('is empty')
              : spec.item
                ? spec.item(item.trim())
                : ok(item);
        if (checked.problem !== undefined) problems.push(`item ${i + 1}: ${checked.problem}`);
        else out.push(checked.value);
      }
      return problems.length > 0 ? bad(problems.join('; ')) : ok(out);
    }
  }
}

function finish(spec: FieldSpec, value: string | number, opts: CoerceOptions): Checked<unknown> {
  const checked = spec.check ? spec.check(value) : ok(value);
  if (checked.problem !== undefined || !spec.path) return checked;
  const p = checked.value as string;
  return ok(isAbsolute(p) ? p : resolve(opts.base, p));
}
