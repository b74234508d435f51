// Server-side browser sessions (DESIGN §3): the cookie holds a random id; the record,
// keyed by the id's SHA-256, names the credential it came from and expires when idle
// and absolutely. Persisted to sessions.json so a restart does not log everyone out.
import { randomBytes } from 'node:crypto';
import { digestHex } from '../secrets/token.js';
import { readSecretFile, writeFileAtomic } from '../util/fs.js';

export interface SessionRecord {
  /** Which credential created it: "token:<fingerprint>", later "device:<id>". */
  credential: string;
  scope: 'admin' | 'read';
  createdAt: number;
  lastSeenAt: number;
}

export interface SessionStoreOptions {
  /** sessions.json; omit for memory only. */
  file?: string;
  /** Idle expiry. Default 7 days. */
  idleMs?: number;
  /** Absolute expiry. Default 30 days. */
  maxMs?: number;
  /** Bound on stored sessions; the least recently used go first. Default 10000. */
  maxSessions?: number;
  now?: () => number;
}

export interface SessionStore {
  create(credential: string, scope: SessionRecord['scope']): { id: string; maxAgeSeconds: number };
  /** The live record for a cookie value, refreshed; undefined if unknown or expired. */
  lookup(id: string): SessionRecord | undefined;
  /**
   * The session's key (the id's SHA-256, hex): names it to the connection tracker and
   * onEnd listeners without holding the cookie value itself.
   */
  keyOf(id: string): string;
  /** Whether the session a key names is still live (not refreshed). */
  isLive(key: string): boolean;
  /**
   * Counts use of a live session by its key (a request over the control WebSocket it
   * opened): idle expiry then starts over, as an HTTP request with the cookie does.
   * Returns whether the session was live.
   */
  touch(key: string): boolean;
  delete(id: string): void;
  /**
   * Called with a session's key whenever it ends for any reason: deleted (logout), expired
   * (found at lookup or by sweep), revoked with its credential, evicted by the size bound.
   */
  onEnd(listener: (key: string) => void): void;
  /** Ends every expired session now (the gateway runs this on a timer); returns how many. */
  sweep(): number;
  /** Ends every session created by a credential; returns how many. */
  revokeCredential(credential: string): number;
  /** Ends sessions whose credential fails `isValid` (e.g. the token changed while stopped). */
  revokeWhere(isValid: (credential: string) => boolean): number;
  readonly size: number;
  /** Writes pending changes now. */
  flush(): void;
}

const TOUCH_PERSIST_MS = 60_000;

export function createSessionStore(options: SessionStoreOptions = {}): SessionStore {
  const idleMs = options.idleMs ?? 7 * 24 * 3600_000;
  const maxMs = options.maxMs ?? 30 * 24 * 3600_000;
  const maxSessions = options.maxSessions ?? 10_000;
  const now = options.now ?? Date.now;
  const records = new Map<string, SessionRecord>();
  const endListeners: ((key: string) => void)[] = [];
  let dirty = false;
  let lastPersist = 0;

  if (options.file) {
    let text: string | undefined;
    try {
      // Refuses a file others could read or have planted: then everyone logs in afresh.
      text = readSecretFile(options.file);
    } catch {
      text = undefined;
    }
    if (text) {
      try {
        const parsed = JSON.parse(text) as { sessions?: Record<string, SessionRecord> };
        const t = now();
        for (const [k, r] of Object.entries(parsed.sessions ?? {})) {
          if (isLive(r, t)) records.set(k, r);
        }
      } catch {
        // A corrupt sessions file only costs users a fresh login; never refuse to start.
      }
    }
  }

  function isLive(r: SessionRecord, t: number): boolean {
    return t - r.createdAt < maxMs && t - r.lastSeenAt < idleMs;
  }

  function persist(force: boolean): void {
    if (!options.file || (!force && !dirty)) return;
    const t = now();
    if (!force && t - lastPersist < TOUCH_PERSIST_MS) return;
    const sessions: Record<string, SessionRecord> = {};
    for (const [k, r] of records) if (isLive(r, t)) sessions[k] = r;
    writeFileAtomic(options.file, JSON.stringify({ version: 1, sessions }), { mode: 0o600 });
    dirty = false;
    lastPersist = t;
  }

  const keyOf = digestHex;

  /** Removes a record and tells the listeners (which close what the session opened). */
  function end(k: string): boolean {
    if (!records.delete(k)) return false;
    for (const l of endListeners) l(k);
    return true;
  }

  function revokeWhere(isValid: (credential: string) => boolean): number {
    let n = 0;
    for (const [k, r] of records) {
      if (!isValid(r.credential)) {
        end(k);
        n++;
      }
    }
    if (n) persist(true);
    return n;
  }

  /** The live record under key `k`, its last use set to now; an expired one is ended. */
  function refresh(k: string): SessionRecord | undefined {
    const r = records.get(k);
    if (!r) return undefined;
    const t = now();
    if (!isLive(r, t)) {
      end(k);
      dirty = true;
      return undefined;
    }
    r.lastSeenAt = t;
    // Re-insert to keep Map order = least recently used first.
    records.delete(k);
    records.set(k, r);
    dirty = true;
    persist(false);
    return r;
  }

  return {
    create(credential, scope) {
      const id = randomBytes(32).toString('base64url');
      const t = now();
      records.set(keyOf(id), { credential, scope, createdAt: t, lastSeenAt: t });
      while (records.size > maxSessions) {
        const oldest = records.keys().next().value;
        if (oldest === undefined) break;
        end(oldest);
      }
      persist(true);
      return { id, maxAgeSeconds: Math.floor(maxMs / 1000) };
    },
    lookup(id) {
      if (id.length < 20 || id.length > 100) return undefined;
      return refresh(keyOf(id));
    },
    touch(key) {
      return refresh(key) !== undefined;
    },
    keyOf,
    isLive(key) {
      const r = records.get(key);
      return r !== undefined && isLive(r, now());
    },
    delete(id) {
      if (end(keyOf(id))) persist(true);
    },
    onEnd(listener) {
      endListeners.push(listener);
    },
    sweep() {
      const t = now();
      let n = 0;
      for (const [k, r] of records) {
        if (!isLive(r, t)) {
          end(k);
          n++;
        }
      }
      if (n) {
        dirty = true;
        persist(false);
      }
      return n;
    },
    revokeCredential: (credential) => revokeWhere((c) => c !== credential),
    revokeWhere,
    get size() {
      return records.size;
    },
    flush() {
      persist(true);
    },
  };
}
