// Long-lived responses by credential: rotating or revoking a credential must close every
// WebSocket, SSE stream and streamed body it authenticated (DESIGN §3), at once.

export interface Closable {
  readonly destroyed?: boolean;
  destroy(): void;
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

export function createConnectionTracker(): ConnectionTracker {
  const byCredential = new Map<string, Set<Closable>>();
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
        set = new Set();
        byCredential.set(credential, set);
      }
      set.add(c);
      const s = set;
      c.once('close', () => {
        s.delete(c);
        if (s.size === 0 && byCredential.get(credential) === s) byCredential.delete(credential);
      });
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
