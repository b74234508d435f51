// GET/POST /_porthole/api/settings (admin): the console-editable settings, each with its
// effective value and where it comes from (as `porthole config check` says), and saving
// them into state.json `settings` — the "state" layer loadConfig reads below porthole.toml,
// the environment and flags. porthole.toml is never written. A key those higher layers set
// cannot be changed here (409 SETTING_LOCKED, naming where it is set); values are checked
// exactly as the file's are (400 CONFIG_INVALID listing every problem), and the whole
// configuration must still load and pass the exposure rules that `porthole serve` applies
// at start, so a saved setting can never stop the next start. Settings are read at start:
// the answer lists what differs from the running gateway (`restartRequired`).
import { coerceValue } from '../../config/coerce.js';
import { ENV_KEYS, FLAG_KEYS } from '../../config/layers.js';
import { loadConfig } from '../../config/load.js';
import { type ConfigKey, fieldSpec, type PortholeConfig } from '../../config/schema.js';
import type { ConfigInputs, ConfigSource, LoadedConfig } from '../../config/types.js';
import { isPortholeError, PortholeError } from '../../errors.js';
import { assertNoConflicts, type ExposureFacts } from '../../exposure/rules.js';
import type { StatePaths } from '../../secrets/paths.js';
import { readState, updateState } from '../../secrets/state.js';
import { appendAudit } from '../../util/audit.js';

/** The keys the console may change (docs/http.md); everything else stays in porthole.toml. */
export const CONSOLE_SETTINGS = [
  'gateway.public_url',
  'gateway.host',
  'tunnel.auto_start',
  'tunnel.relay',
  'tunnel.subdomain',
  'tailscale.mode',
] as const satisfies readonly ConfigKey[];
export type ConsoleSetting = (typeof CONSOLE_SETTINGS)[number];

type Value = string | number | boolean | string[] | null;

export interface SettingView {
  /** The value the next start would use (null: unset). */
  value: Value;
  source: ConfigSource;
  /** The value the running gateway uses, only when it differs from `value`. */
  running?: Value;
}

export interface SettingsView {
  settings: Record<ConsoleSetting, SettingView>;
  /** Keys whose saved value differs from the running gateway's: they apply at the next start. */
  restartRequired: ConsoleSetting[];
}

export interface SettingsKeeper {
  read(): SettingsView;
  /** Validates and saves `changes` (null clears a key); throws CONFIG_INVALID, SETTING_LOCKED or EXPOSURE_CONFLICT. */
  save(changes: Record<string, unknown>, actor?: { by: string; cred: string }): SettingsView;
}

export interface SettingsKeeperOptions {
  paths: StatePaths;
  /** The config as the gateway runs it. */
  running: PortholeConfig;
  /**
   * How the running config was loaded (the CLI's config file, environment and flags), to
   * re-read the sources now. Absent (an embedding program passed a config object): values
   * that differ from file + state + defaults count as set by the program ("flag").
   */
  inputs?: Omit<ConfigInputs, 'state'>;
  /** The running gateway's auth mode (`none` with --insecure-no-auth), for the exposure rules. */
  authMode: ExposureFacts['authMode'];
  /** Called after every successful save (exposure.changed). */
  onSaved?: () => void;
}

export function createSettingsKeeper(o: SettingsKeeperOptions): SettingsKeeper {
  const home = o.paths.home;
  const inputs: Omit<ConfigInputs, 'state'> = o.inputs ?? { home, env: {}, flags: {} };

  function load(state: Record<string, unknown>): LoadedConfig {
    const loaded = loadConfig({ ...inputs, state });
    if (o.inputs) return loaded;
    // No inputs: whatever the embedding program changed shows as set by it (and it will pass
    // the same value at its next start).
    const sources = { ...loaded.sources };
    const config = structuredClone(loaded.config);
    for (const key of CONSOLE_SETTINGS) {
      const running = valueAt(o.running, key);
      if ((sources[key] === 'default' || sources[key] === 'state') && !same(running, valueAt(loaded.config, key))) {
        sources[key] = 'flag';
        setAt(config, key, running);
      }
    }
    return { ...loaded, sources, config };
  }

  function view(loaded: LoadedConfig): SettingsView {
    const settings = {} as Record<ConsoleSetting, SettingView>;
    const restartRequired: ConsoleSetting[] = [];
    for (const key of CONSOLE_SETTINGS) {
      const value = valueAt(loaded.config, key);
      const running = valueAt(o.running, key);
      const entry: SettingView = { value, source: loaded.sources[key] ?? 'default' };
      if (!same(value, running)) {
        entry.running = running;
        restartRequired.push(key);
      }
      settings[key] = entry;
    }
    return { settings, restartRequired };
  }

  function savedSettings(): Record<string, unknown> {
    return { ...(readState(o.paths).settings ?? {}) };
  }

  return {
    read: () => view(load(savedSettings())),
    save(changes, actor) {
      const keys = Object.keys(changes);
      if (keys.length === 0) throw invalid(['no settings given: send {"key": value, …} (null clears a key)']);
      const problems: string[] = [];
      for (const key of keys) {
        if (!(CONSOLE_SETTINGS as readonly string[]).includes(key)) {
          problems.push(`${key}: not a console setting (these are: ${CONSOLE_SETTINGS.join(', ')}); set it in porthole.toml`);
        }
      }
      if (problems.length > 0) throw invalid(problems);
      const current = savedSettings();
      const before = load(current);
      const locked = keys.filter((k) => ['flag', 'env', 'file'].includes(before.sources[k] ?? 'default'));
      if (locked.length > 0) {
        const where = locked.map((k) => `${k} is set ${describeSource(k as ConsoleSetting, before)}`);
        throw new PortholeError(
          'SETTING_LOCKED',
          `${where.join('; ')}: that takes precedence over settings saved here, so change it there (or remove it there to manage it from the console)`,
          { details: where },
        );
      }
      const next = { ...current };
      for (const key of keys as ConsoleSetting[]) {
        const raw = changes[key];
        if (raw === null) {
          delete next[key];
          continue;
        }
        // Exactly as a porthole.toml value is checked (typed JSON, like TOML: no text parsing).
        const checked = coerceValue(fieldSpec(key), raw, { text: false, base: home });
        if (checked.problem !== undefined) problems.push(`${key}: ${checked.problem}`);
        else next[key] = checked.value;
      }
      if (problems.length > 0) throw invalid(problems);
      let after: LoadedConfig;
      try {
        after = load(next);
      } catch (err) {
        if (isPortholeError(err, 'CONFIG_INVALID')) throw invalid(err.details ?? [err.message]);
        throw err;
      }
      // The exposure rules `porthole serve` applies at start: a saved setting must not stop it.
      const c = after.config;
      assertNoConflicts({
        bindHost: c.gateway.host,
        authMode: o.authMode,
        tailscale: c.tailscale.mode,
        tunnel: c.tunnel.enabled,
        tunnelAutoStart: c.tunnel.auto_start,
      });
      updateState(o.paths, (s) => {
        if (Object.keys(next).length > 0) s.settings = next;
        else delete s.settings;
      });
      appendAudit(o.paths.auditLog, 'settings saved', { keys: keys.join(','), ...actor });
      o.onSaved?.();
      return view(after);
    },
  };
}

function invalid(problems: string[]): PortholeError {
  const n = problems.length;
  return new PortholeError('CONFIG_INVALID', `${n} problem${n > 1 ? 's' : ''}: ${problems.join('; ')}`, { status: 400, details: problems });
}

function describeSource(key: ConsoleSetting, loaded: LoadedConfig): string {
  switch (loaded.sources[key]) {
    case 'file':
      return `in ${loaded.file ?? 'porthole.toml'}`;
    case 'env': {
      const name = Object.entries(ENV_KEYS).find(([, k]) => k === key)?.[0];
      return `by the environment variable ${name ?? '(unknown)'} of the running gateway`;
    }
    default: {
      const flag = Object.values(FLAG_KEYS).find((f) => f.key === key)?.flag;
      return flag ? `by the flag ${flag} on the porthole serve command line` : 'by the program that embeds porthole';
    }
  }
}

function valueAt(config: PortholeConfig, key: ConfigKey): Value {
  let node: unknown = config;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node === undefined ? null : (node as Value);
}

function setAt(config: PortholeConfig, key: ConfigKey, value: Value): void {
  const parts = key.split('.');
  let node = config as unknown as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  if (value === null) delete node[parts.at(-1)!];
  else node[parts.at(-1)!] = value;
}

function same(a: Value, b: Value): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
