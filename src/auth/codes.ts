// One-time codes (`phc_` + 256 bits): a browser's first load with `?code=` trades one for
// a session. Single use, short-lived, held in memory as digests only.
import { generateCode } from '../secrets/token.js';
import { digest } from '../secrets/token.js';

export interface CodeGrant {
  /** The credential the session will be attributed to. */
  credential: string;
  scope: 'admin' | 'read';
}

export type CodeResult =
  | { status: 'ok'; grant: CodeGrant }
  /** Used or expired recently: not a guess, so not counted as a failed login. */
  | { status: 'stale' }
  | { status: 'unknown' };

export interface CodeStoreOptions {
  /** Lifetime of a code. Default 5 minutes. */
  ttlMs?: number;
  /** How long a used or expired code is still recognised as stale. Default 1 hour. */
  staleMs?: number;
  /** Bound on outstanding codes. Default 1000 (oldest dropped). */
  maxCodes?: number;
  now?: () => number;
}

export interface CodeStore {
  issue(grant: CodeGrant): { code: string; expiresAt: number };
  consume(code: string): CodeResult;
  /** Forget every outstanding code of a credential (rotation). */
  revokeCredential(credential: string): void;
}

interface Entry {
  grant: CodeGrant;
  expiresAt: number;
  usedAt?: number;
}

export function createCodeStore(options: CodeStoreOptions = {}): CodeStore {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const staleMs = options.staleMs ?? 3600_000;
  const maxCodes = options.maxCodes ?? 1000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  function sweep(t: number): void {
    for (const [k, e] of entries) {
      if ((e.usedAt ?? e.expiresAt) + staleMs < t) entries.delete(k);
    }
    while (entries.size > maxCodes) {
      const first = entries.keys().next().value;
      if (first === undefined) break;
      entries.delete(first);
    }
  }

  return {
    issue(grant) {
      const t = now();
      const code = generateCode();
      const expiresAt = t + ttlMs;
      entries.set(digest(code).toString('hex'), { grant, expiresAt });
      sweep(t);
      return { code, expiresAt };
    },
    consume(code) {
      const t = now();
      const e = entries.get(digest(code).toString('hex'));
      if (!e) return { status: 'unknown' };
      if (e.usedAt !== undefined || e.expiresAt <= t) {
        e.usedAt ??= t;
        return { status: 'stale' };
      }
      // Single use: marked before returning, and JS runs this synchronously, so two
      // concurrent exchanges of one code cannot both win.
      e.usedAt = t;
      return { status: 'ok', grant: e.grant };
    },
    revokeCredential(credential) {
      const t = now();
      for (const e of entries.values()) if (e.grant.credential === credential) e.usedAt ??= t;
    },
  };
}
