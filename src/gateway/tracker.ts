// Long-lived responses by credential: rotating or revoking a credential must close every
// WebSocket, SSE stream and streamed body it authenticated (DESIGN §3), at once. Those a
// browser session authenticated are tracked by that session too: logging out, expiry or
// revocation of the session closes them, the credential's other sessions stay.

export interface Closable {
  readonly destroyed?: boolean;
  destroy(): void;
  on(event: 'close', listener: (this: Closable) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}

export interface ConnectionTracker {
  /**
   * Tracks `c` under `credential` until it closes; under `session` as well (a session key,
   * src/auth/sessions.ts) when a session cookie authenticated it.
   */
  add(credential: string, c: Closable, session?: string): void;
  /** Destroys everything authenticated by `credential`; returns how many. */
  closeCredential(credential: string): number;
  /** Destroys everything a session authenticated (logout, expiry, revocation); returns how many. */
  closeSession(session: string): number;
  /** Destroys everything whose credential fails `keep`. */
  closeWhere(keep: (credential: string) => boolean): number;
  count(credential?: string): number;
}

/** One credential's open items; knows its map so a shared 'close' listener can tidy up. */
class CredentialSet extends Set<Closable> {
  constructor(
    readonly owner: Map<string, CredentialSet>,
    readonly credential: string,
  ) {
    super();
  }
}

// Per-request path: one shared listener and a symbol on the item instead of a closure and a
// once() wrapper per tracked response.
const kSet = Symbol('porthole.tracker.set');
type Tagged = Closable & { [kSet]?: CredentialSet };

function untrack(this: Tagged): void {
  const set = this[kSet];
  if (set === undefined) return;
  this[kSet] = undefined;
  set.delete(this);
  if (set.size === 0 && set.owner.get(set.credential) === set) set.owner.delete(set.credential);
}

/** Session keys → what each session authenticated; entries leave on 'close'. */
const kSession = Symbol('porthole.tracker.session');
type SessionTagged = Closable & { [kSession]?: { map: Map<string, Set<Closable>>; key: string } };

function untrackSession(this: SessionTagged): void {
  const tag = this[kSession];
  if (tag === undefined) return;
  this[kSession] = undefined;
  const set = tag.map.get(tag.key);
  if (set === undefined) return;
  set.delete(this);
  if (set.size === 0) tag.map.delete(tag.key);
}

export function createConnectionTracker(): ConnectionTracker {
  const byCredential = new Map<string, CredentialSet>();
  const bySession = new Map<string, Set<Closable>>();
  function addSession(session: string, c: Closable): void {
    const item = c as SessionTagged;
    // One session per item: a response or socket is authenticated once.
    if (item[kSession] !== undefined) return;
    let set = bySession.get(session);
    if (!set) {
      set = new Set();
      bySession.set(session, set);
    }
    set.add(c);
    item[kSession] = { map: bySession, key: session };
    c.on('close', untrackSession);
  }
  function closeSet(set: Set<Closable>): number {
    const items = [...set];
    set.clear();
    for (const c of items) c.destroy();
    return items.length;
  }
  return {
    add(credential, c, session) {
      // Already gone: its 'close' has fired and would never remove it.
      if (c.destroyed) return;
      if (session !== undefined) addSession(session, c);
      let set = byCredential.get(credential);
      if (!set) {
        set = new CredentialSet(byCredential, credential);
        byCredential.set(credential, set);
      }
      const item = c as Tagged;
      if (item[kSet] === set) return;
      if (item[kSet] !== undefined) {
        // Already tracked under another credential (rare: never for a response): keep both.
        const s = set;
        set.add(c);
        c.once('close', () => {
          s.delete(c);
          if (s.size === 0 && byCredential.get(credential) === s) byCredential.delete(credential);
        });
        return;
      }
      set.add(c);
      item[kSet] = set;
      c.on('close', untrack);
    },
    closeCredential(credential) {
      const set = byCredential.get(credential);
      if (!set) return 0;
      byCredential.delete(credential);
      return closeSet(set);
    },
    closeSession(session) {
      const set = bySession.get(session);
      if (!set) return 0;
      bySession.delete(session);
      return closeSet(set);
    },
    closeWhere(keep) {
      let n = 0;
      for (const [cred, set] of byCredential) {
        if (!keep(cred)) {
          byCredential.delete(cred);
          n += closeSet(set);
        }
      }
      return n;
    },
    count(credential) {
      if (credential !== undefined) return byCredential.get(credential)?.size ?? 0;
      let n = 0;
      for (const s of byCredential.values()) n += s.size;
      return n;
    },
  };
}
