// What several tabs share: the status (with its exposure overview), the console-editable
// settings and a field that edits one of them, and the "admin only" placeholder.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLiveEvents } from '../live';
import type { Exposure, Identity, MethodId, MethodState, Settings, Status } from '../types';
import { ErrorLine, Notice, useAction, useLoad } from '../ui';

export interface TabProps {
  identity: Identity;
}

/** GET /status, re-read when the gateway says the exposure, tunnel or devices changed. */
export function useStatus() {
  const s = useLoad(() => api<Status>('/status'));
  useLiveEvents(['exposure.changed', 'tunnel.state'], s.reload);
  return s;
}

export function methodOf(exposure: Exposure | undefined, id: MethodId): MethodState | undefined {
  return exposure?.methods[id];
}

export function useSettings(enabled: boolean) {
  const s = useLoad(() => (enabled ? api<{ settings: Settings }>('/settings').then((r) => r.settings) : Promise.resolve(undefined)), [enabled]);
  useLiveEvents(['exposure.changed'], s.reload);
  return s;
}

export function AdminOnly({ what }: { what: string }) {
  return <Notice kind="warn">{what} needs the admin scope; this session is read-only.</Notice>;
}

const LOCKED = new Set(['file', 'env', 'flag']);
const SOURCE_TEXT: Record<string, string> = {
  file: 'porthole.toml',
  env: 'an environment variable',
  flag: 'a command-line flag',
  state: 'saved from the console',
  default: 'default',
};

export interface SettingFieldProps {
  settings: Settings | undefined;
  name: string;
  label: string;
  kind?: 'text' | 'checkbox' | 'select';
  options?: readonly string[];
  placeholder?: string;
  hint?: string;
  onSaved?: () => void;
}

/** One console-editable key: its value and where it comes from; saved to state.json. */
export function SettingField({ settings, name, label, kind = 'text', options, placeholder, hint, onSaved }: SettingFieldProps) {
  const current = settings?.[name];
  const initial = current?.value ?? (kind === 'checkbox' ? false : '');
  const [value, setValue] = useState<unknown>(undefined);
  const [restart, setRestart] = useState(false);
  const shown = value === undefined ? initial : value;
  const locked = current !== undefined && LOCKED.has(current.source);
  const id = `setting-${name.replace(/\./g, '-')}`;
  const save = useAction(async () => {
    let v: unknown = shown;
    if (kind === 'text' && typeof v === 'string') v = v.trim() === '' ? null : v.trim();
    const r = await api<{ restartRequired?: string[] }>('/settings', { method: 'POST', body: { [name]: v } });
    setRestart((r.restartRequired ?? []).includes(name));
    setValue(undefined);
    onSaved?.();
  });
  const source = current ? (SOURCE_TEXT[current.source] ?? current.source) : undefined;
  return (
    <form
      class="setting"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      {kind === 'checkbox' ? (
        <label class="check" for={id}>
          <input id={id} type="checkbox" checked={shown === true} disabled={locked} onChange={(e) => setValue(e.currentTarget.checked)} />
          {label}
        </label>
      ) : (
        <label for={id}>{label}</label>
      )}
      <div class="copy-row">
        {kind === 'text' && (
          <input
            id={id}
            value={shown === null ? '' : String(shown)}
            placeholder={placeholder}
            disabled={locked}
            spellcheck={false}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        )}
        {kind === 'select' && (
          <select id={id} value={String(shown)} disabled={locked} onChange={(e) => setValue(e.currentTarget.value)}>
            {(options ?? []).map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        )}
        <button type="submit" disabled={locked || save.busy || value === undefined}>
          Save
        </button>
      </div>
      <p class="hint">
        {hint ? `${hint} ` : ''}
        {source && (locked ? `Set in ${source}: change it there.` : `Source: ${source}.`)}
      </p>
      {restart && <Notice kind="warn">Saved. It takes effect when the gateway restarts.</Notice>}
      <ErrorLine error={save.error} />
    </form>
  );
}
