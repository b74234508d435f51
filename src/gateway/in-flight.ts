// Requests each client has in flight to the app ([gateway] max_requests_per_client). Without
// a cap one client — an anonymous caller of a public path, or a holder of a credential — could
// hold every connection to the app (1,024 per pool) by trickling bodies under stall_timeout,
// and everyone else would wait for a 504. Keyed like the ban table (DESIGN §3.2: an IPv6 /64,
// the visitor behind a trusted proxy or the relay). docs/security.md, "Fair shares".

export interface InFlight {
  /** Takes one of `key`'s places; false (nothing taken) when it holds `limit` already. */
  acquire(key: string): boolean;
  /** Gives back one place of `key`, when what `acquire` admitted has ended. */
  release(key: string): void;
  /** Places `key` holds (every key: the sum). */
  count(key?: string): number;
}

/** `limit` 0: no cap (acquire always succeeds and nothing is counted). */
export function createInFlight(limit: number): InFlight {
  const held = new Map<string, number>();
  return {
    acquire(key) {
      if (limit === 0) return true;
      const n = held.get(key) ?? 0;
      if (n >= limit) return false;
      held.set(key, n + 1);
      return true;
    },
    release(key) {
      if (limit === 0) return;
      const n = held.get(key);
      if (n === undefined) return;
      if (n <= 1) held.delete(key);
      else held.set(key, n - 1);
    },
    count(key) {
      if (key !== undefined) return held.get(key) ?? 0;
      let sum = 0;
      for (const n of held.values()) sum += n;
      return sum;
    },
  };
}
