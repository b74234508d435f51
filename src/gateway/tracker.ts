// Long-lived responses by credential: rotating or revoking a credential must close every
// WebSocket, SSE stream and streamed body it authenticated (DESIGN §3), at once.

export interface Closable {
  readonly destroyed?: boolean;
  destroy(): void;
  on(event: 'close', listener: (this: Closable) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}

export interface ConnectionTracker {
  /** Tracks `c` under `credential` until it closes. */
  add(credential: string, c: Closable): void;
  /** Destroys everything authenticated by `credential`; returns how many. */
  closeCredential(credential: string): number;
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

export function createConnectionTracker(): ConnectionTracker {
  const byCredential = new Map<string, CredentialSet>();
  function closeSet(set: Set<Closable>): number {
    const items = [...set];
    set.clear();
    for (const c of items) c.destroy();
    return items.length;
  }
  return {
    add(credential, c) {
      // Already gone: its 'close' has fired and would never remove it.
      if (c.destroyed) return;
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
