// Small building blocks shared by the tabs: health badges, copy fields, notices, and a
// loader hook that re-reads an API endpoint on demand (events call reload; nothing polls).
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from './api';
import type { Health } from './types';

const HEALTH_TEXT: Record<Health, string> = {
  ok: 'Working',
  starting: 'Starting',
  degraded: 'Not working',
  off: 'Off',
  unknown: 'Unknown',
};

export function Badge({ health }: { health: Health }) {
  return <span class={`badge badge-${health}`}>{HEALTH_TEXT[health] ?? health}</span>;
}

let fieldId = 0;

/** A read-only value with a Copy button (URLs, commands, codes). */
export function CopyField({ label, value, multiline, testId }: { label: string; value: string; multiline?: boolean; testId?: string }) {
  const [id] = useState(() => `copy-${++fieldId}`);
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // No clipboard permission (plain http on a LAN address): select it for Ctrl+C instead.
      ref.current?.select();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <div class="copy">
      <label for={id}>{label}</label>
      <div class="copy-row">
        {multiline ? (
          <textarea id={id} ref={ref} readOnly rows={Math.min(12, value.split('\n').length + 1)} value={value} data-testid={testId} spellcheck={false} />
        ) : (
          <input id={id} ref={ref} readOnly value={value} data-testid={testId} spellcheck={false} />
        )}
        <button type="button" onClick={copy} aria-label={`Copy ${label}`}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}

export function ErrorLine({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  return (
    <p class="error" role="alert">
      {describeError(error)}
    </p>
  );
}

export function Notice({ children, kind = 'info' }: { children: ComponentChildren; kind?: 'info' | 'warn' | 'ok' }) {
  return (
    <div class={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h3 id={id}>{title}</h3>
      {children}
    </section>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Loads `fn()` now and whenever reload() is called (an event arrived, an action finished). */
export function useLoad<T>(fn: () => Promise<T>, deps: readonly unknown[] = []): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const seq = useRef(0);
  const latest = useRef(fn);
  latest.current = fn;
  const reload = useCallback(() => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    latest.current().then(
      (data) => n === seq.current && setState({ data, error: undefined, loading: false }),
      (error: unknown) => n === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, []);
  // Callers name what the load depends on (deps); reload itself is stable.
  useEffect(reload, deps);
  return { ...state, reload };
}

/** Runs an action, tracking busy and error state for a button. */
export function useAction<A extends unknown[]>(fn: (...args: A) => Promise<unknown>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async (...args: A): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    try {
      await fn(...args);
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
