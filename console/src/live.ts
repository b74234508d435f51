// Live updates over the control plane (/_porthole/ws, docs/control-plane.md), signed in by
// the session cookie: the gateway pushes tunnel.state, devices.changed, exposure.changed and
// pair.completed. No polling: each view re-reads the API when an event says it changed,
// and once after a reconnect (events may have been missed while the socket was down).
import { useEffect, useRef, useState } from 'preact/hooks';
import { type ClientState, type ControlClient, connect } from '../../src/client/browser.js';

type Handler = (payload: unknown, event: string) => void;

export interface LiveStatus {
  state: ClientState | 'idle';
  /** Why the connection closed for good (AUTH_REVOKED after a revoke or a rotation). */
  error?: { code: string; message: string };
}

const handlers = new Map<string, Set<Handler>>();
const statusListeners = new Set<(s: LiveStatus) => void>();
let status: LiveStatus = { state: 'idle' };
let client: ControlClient | undefined;

function setStatus(s: LiveStatus): void {
  status = s;
  for (const fn of statusListeners) fn(s);
}

function dispatch(event: string, payload: unknown): void {
  for (const name of [event, '*']) for (const fn of handlers.get(name) ?? []) fn(payload, event);
}

/** Opens the connection once the console has a session. */
export async function startLive(): Promise<void> {
  if (client) return;
  setStatus({ state: 'connecting' });
  try {
    const c = await connect({ deviceName: 'porthole console' });
    client = c;
    c.on('*', (payload, event) => dispatch(event, payload));
    c.onState((state, err) => {
      setStatus(err && state === 'closed' ? { state, error: { code: err.code, message: err.message } } : { state });
      // Back after a drop: anything may have changed meanwhile.
      if (state === 'open') dispatch('live.reconnected', undefined);
    });
    setStatus({ state: 'open' });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    setStatus({ state: 'closed', error: { code: e.code ?? 'CONTROL_CONNECT_FAILED', message: e.message ?? String(err) } });
  }
}

export async function stopLive(): Promise<void> {
  const c = client;
  client = undefined;
  await c?.close();
  setStatus({ state: 'idle' });
}

/** Calls a control-plane method on the live connection. */
export function liveRequest<T>(method: string, params?: unknown): Promise<T> {
  if (!client) return Promise.reject(new Error('not connected'));
  return client.request<T>(method, params);
}

/** Runs `fn` for each of `events` (and after a reconnect) while the component is mounted. */
export function useLiveEvents(events: readonly string[], fn: Handler): void {
  const latest = useRef(fn);
  latest.current = fn;
  const key = events.join(',');
  useEffect(() => {
    const names = [...key.split(','), 'live.reconnected'];
    const wrapper: Handler = (payload, event) => latest.current(payload, event);
    for (const name of names) {
      let set = handlers.get(name);
      if (!set) {
        set = new Set();
        handlers.set(name, set);
      }
      set.add(wrapper);
    }
    return () => {
      for (const name of names) handlers.get(name)?.delete(wrapper);
    };
  }, [key]);
}

export function useLiveStatus(): LiveStatus {
  const [s, set] = useState(status);
  useEffect(() => {
    statusListeners.add(set);
    set(status);
    return () => {
      statusListeners.delete(set);
    };
  }, []);
  return s;
}
