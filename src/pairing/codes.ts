// Pairing codes (docs/pairing.md): the long code `phc_` + 256 bits (what a QR link carries)
// and, with it, a short code of 10 Crockford base32 characters for typing by hand. Both name
// the same pairing: 5 minutes, single use, held in memory as digests only. Short codes carry
// only 50 bits, so every well-formed wrong short code counts one attempt against every live
// pairing code, and a short code that has absorbed 5 wrong attempts is burnt: an attacker gets
// at most 5 guesses per code (a 5·2⁻⁵⁰ chance), whatever their address. Only the short form
// burns: the long code (256 bits, in the QR) cannot be guessed, so wrong short codes from
// anyone must not stop the person scanning the QR.
import { randomInt } from 'node:crypto';
import { digestHex, generateCode } from '../secrets/token.js';

export interface CodeGrant {
  /** The credential that made the code (sessions and devices are attributed to it; revoking it burns its codes). */
  credential: string;
  /** Scope of the device (or session) it creates: fixed when the code is made. */
  scope: 'admin' | 'read';
  /** When the device it creates expires (ms since epoch); null: never; undefined: the default. */
  deviceExpiresAt?: number | null;
  /** The device waits in `pending` until approved. */
  requireApproval?: boolean;
}

export type CodeResult =
  | { status: 'ok'; grant: CodeGrant }
  /** Used, expired or burnt (too many wrong short codes) recently: not a guess, so not counted as a failed login. */
  | { status: 'stale' }
  | { status: 'unknown' };

export interface CodeStoreOptions {
  /** Lifetime of a code. Default 5 minutes. */
  ttlMs?: number;
  /** How long a used or expired code is still recognised as stale. Default 1 hour. */
  staleMs?: number;
  /** Bound on outstanding codes. Default 1000 (oldest dropped). */
  maxCodes?: number;
  /** Wrong short codes a pairing code survives. Default 5. */
  maxShortAttempts?: number;
  now?: () => number;
}

export interface IssuedCode {
  code: string;
  /** 10 Crockford base32 characters, shown as XXXXX-XXXXX. */
  shortCode: string;
  expiresAt: number;
}

export interface CodeStore {
  issue(grant: CodeGrant): IssuedCode;
  /** Trades a long code (`phc_…`). */
  consume(code: string): CodeResult;
  /** Trades a short code (dash, spaces and case ignored). A wrong one counts against every live code. */
  consumeShort(shortCode: string): CodeResult;
  /** Forget every outstanding code of a credential (rotation, revocation). */
  revokeCredential(credential: string): void;
}

interface Entry {
  grant: CodeGrant;
  expiresAt: number;
  shortKey: string;
  usedAt?: number;
  attempts: number;
  /** The short form absorbed too many wrong attempts; the long code still works. */
  shortBurnt?: true;
}

/** Crockford's base32: no I, L, O, U. */
export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const SHORT_CODE_LENGTH = 10;

export function generateShortCode(): string {
  let s = '';
  for (let i = 0; i < SHORT_CODE_LENGTH; i++) s += CROCKFORD[randomInt(32)];
  return s;
}

/** XXXXX-XXXXX. */
export function formatShortCode(code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/**
 * A typed short code in canonical form, or undefined when it cannot be one: case-insensitive,
 * dashes and spaces ignored, and Crockford's look-alikes read as digits (I, L → 1; O → 0).
 */
export function normalizeShortCode(input: string): string | undefined {
  if (typeof input !== 'string' || input.length > 32) return undefined;
  const s = input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/[IL]/g, '1')
    .replace(/O/g, '0');
  if (s.length !== SHORT_CODE_LENGTH) return undefined;
  for (const c of s) if (!CROCKFORD.includes(c)) return undefined;
  return s;
}

export function createCodeStore(options: CodeStoreOptions = {}): CodeStore {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const staleMs = options.staleMs ?? 3600_000;
  const maxCodes = options.maxCodes ?? 1000;
  const maxShortAttempts = options.maxShortAttempts ?? 5;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const byShort = new Map<string, Entry>();

  const keyOf = digestHex;

  function drop(k: string, e: Entry): void {
    entries.delete(k);
    if (byShort.get(e.shortKey) === e) byShort.delete(e.shortKey);
  }

  function sweep(t: number): void {
    for (const [k, e] of entries) {
      if ((e.usedAt ?? e.expiresAt) + staleMs < t) drop(k, e);
    }
    while (entries.size > maxCodes) {
      const first = entries.entries().next().value;
      if (first === undefined) break;
      drop(first[0], first[1]);
    }
  }

  function spend(e: Entry, t: number): CodeResult {
    if (e.usedAt !== undefined || e.expiresAt <= t) {
      e.usedAt ??= t;
      return { status: 'stale' };
    }
    // Single use: marked before returning, and JS runs this synchronously, so two
    // concurrent exchanges of one code cannot both win.
    e.usedAt = t;
    return { status: 'ok', grant: e.grant };
  }

  return {
    issue(grant) {
      const t = now();
      const code = generateCode();
      let shortCode = generateShortCode();
      // 50 bits: a clash is all but impossible, but two live codes must never share one.
      for (let i = 0; i < 8 && byShort.has(keyOf(shortCode)); i++) shortCode = generateShortCode();
      const expiresAt = t + ttlMs;
      const e: Entry = { grant, expiresAt, shortKey: keyOf(shortCode), attempts: 0 };
      entries.set(keyOf(code), e);
      byShort.set(e.shortKey, e);
      sweep(t);
      return { code, shortCode, expiresAt };
    },
    consume(code) {
      if (typeof code !== 'string' || code.length > 256) return { status: 'unknown' };
      const e = entries.get(keyOf(code));
      if (!e) return { status: 'unknown' };
      return spend(e, now());
    },
    consumeShort(input) {
      const t = now();
      const short = normalizeShortCode(input);
      if (short === undefined) return { status: 'unknown' };
      const e = byShort.get(keyOf(short));
      if (e) return e.shortBurnt ? { status: 'stale' } : spend(e, t);
      // A wrong guess: every live short code absorbs it, and burns at the limit.
      for (const x of entries.values()) {
        if (x.usedAt !== undefined || x.expiresAt <= t || x.shortBurnt) continue;
        x.attempts++;
        if (x.attempts >= maxShortAttempts) x.shortBurnt = true;
      }
      return { status: 'unknown' };
    },
    revokeCredential(credential) {
      const t = now();
      for (const e of entries.values()) {
        if (e.grant.credential === credential) e.usedAt ??= t;
      }
    },
  };
}
