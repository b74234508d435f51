// Requests each client has in flight to the app ([gateway] max_requests_per_client). Without
// a cap one client — an anonymous caller of a public path, or a holder of a credential — could
// hold every connection to the app (1,024 per pool) by trickling bodies under stall_timeout,
// and everyone else would wait for a 504. Keyed like the ban table (DESIGN §3.2: an IPv6 /64,
// the visitor behind a trusted proxy or the relay). docs/security.md, "Fair shares".
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Ingress } from '../auth/classify.js';
import { PortholeError } from '../errors.js';

/** What a local request gives back when it ends: it held no place. */
export const NOTHING_HELD = (): void => {};

/**
 * `admit` takes one of the client's places for a request (or upgrade) forwarded to the app and
 * returns what gives it back (idempotent), or undefined when the client holds `limit` already —
 * answer `clientBusy()` (429 CLIENT_BUSY). A local client, on the desk itself, is not counted;
 * `limit` 0 counts no one.
 */
export function createAdmission(limit: number): { admit(d: { ingress: Ingress }): (() => void) | undefined; clientBusy(): PortholeError } {
  /** Places held, by client key; a key leaves when its last place is given back. */
  const held = new Map<string, number>();
  return {
    admit(d) {
      if (limit === 0 || d.ingress.class === 'local') return NOTHING_HELD;
      const key = d.ingress.key;
      const n = held.get(key) ?? 0;
      if (n >= limit) return undefined;
      held.set(key, n + 1);
      let holding = true;
      return () => {
        if (!holding) return;
        holding = false;
        const left = (held.get(key) ?? 1) - 1;
        if (left === 0) held.delete(key);
        else held.set(key, left);
      };
    },
    clientBusy: () => new PortholeError('CLIENT_BUSY', `this client already has ${limit} requests in progress`, { retryAfter: 1 }),
  };
}

/** Per connection: its answers still queued behind another (closeWithConnection). */
const queuedAnswers = new WeakMap<object, Set<ServerResponse>>();

/**
 * Emits 'close' on `res` if its connection closes before the answer gets its turn: node:http
 * (20) closes only the response that holds the socket and leaves queued (pipelined) ones
 * unclosed, so what waits for their 'close' — the tracker, the client's places — would wait
 * for ever.
 */
export function closeWithConnection(res: ServerResponse, socket: Duplex): void {
  let answers = queuedAnswers.get(socket);
  if (answers === undefined) {
    const set = new Set<ServerResponse>();
    answers = set;
    queuedAnswers.set(socket, set);
    socket.once('close', () => {
      for (const r of set) r.emit('close');
      set.clear();
    });
  }
  const set = answers;
  set.add(res);
  res.once('socket', () => set.delete(res));
}
