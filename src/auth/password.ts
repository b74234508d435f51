// Password auth (auth.mode = "password"): the password is stored as a scrypt hash in the
// secret store (never in porthole.toml), verified off the event loop, and guarded by the
// per-client ban table plus a global throttle (DESIGN §3 step 2), because a password —
// unlike a 256-bit token — can be guessed from many addresses at once.
//
// Stored form, the PHC string format (https://github.com/P-H-C/phc-string-format):
//   $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64 no padding>$<hash, base64 no padding>
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { PortholeError } from '../errors.js';
import type { SecretStore } from '../secrets/store.js';

/** Secret store entry holding the hash (`$PORTHOLE_HOME/secrets/password-hash`, 0600). */
export const PASSWORD_STORE_KEY = 'password-hash';
/** The login form (GET) and its submission (POST): public in password mode. */
export const LOGIN_PATH = '/_porthole/login';
export const MIN_PASSWORD_CHARS = 12;
export const MAX_PASSWORD_CHARS = 1024;

/**
 * scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds on a small desk). The
 * parameters are stored with each hash, so a later version can raise them for new passwords.
 */
const DEFAULT_PARAMS = { ln: 15, r: 8, p: 1 } as const;
const HASH_BYTES = 32;
const SALT_BYTES = 16;
/** Bounds on parameters read back from the store: a tampered file must not make a login cost minutes or gigabytes. */
const MAX_LN = 20;
const MAX_R = 16;
const MAX_P = 4;

interface Params {
  ln: number;
  r: number;
  p: number;
}

function scrypt(password: string, salt: Buffer, params: Params): Promise<Buffer> {
  const N = 2 ** params.ln;
  const maxmem = 128 * N * params.r * params.p + 32 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, HASH_BYTES, { N, r: params.r, p: params.p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** Why a password cannot be used, or undefined. Never includes the password. */
export function passwordProblem(password: string): string | undefined {
  const chars = [...password].length;
  if (chars === 0) return 'the password is empty';
  if (/[\r\n]/.test(password)) return 'the password spans several lines';
  if (chars < MIN_PASSWORD_CHARS) return `the password has fewer than ${MIN_PASSWORD_CHARS} characters`;
  if (chars > MAX_PASSWORD_CHARS) return `the password has more than ${MAX_PASSWORD_CHARS} characters`;
  return undefined;
}

/** Hashes a new password (checked by passwordProblem first; throws PASSWORD_WEAK). */
export async function hashPassword(password: string, params: Params = DEFAULT_PARAMS): Promise<string> {
  const problem = passwordProblem(password);
  if (problem) throw new PortholeError('PASSWORD_WEAK', `${problem}; use at least ${MIN_PASSWORD_CHARS} characters`);
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

interface ParsedHash {
  params: Params;
  salt: Buffer;
  key: Buffer;
}

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{43})$/;

/** Parses a stored hash; undefined when it is not one this version wrote (or within bounds). */
export function parsePasswordHash(stored: string): ParsedHash | undefined {
  const m = PHC.exec(stored);
  if (!m) return undefined;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.ln < 10 || params.ln > MAX_LN || params.r < 1 || params.r > MAX_R || params.p < 1 || params.p > MAX_P) {
    return undefined;
  }
  const key = Buffer.from(m[5]!, 'base64');
  if (key.length !== HASH_BYTES) return undefined;
  return { params, salt: Buffer.from(m[4]!, 'base64'), key };
}

/** Constant-time check of `password` against a stored hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  if (!parsed) return false;
  // Bound the work an attacker can ask for: the hash input is capped like a new password.
  if (password.length > MAX_PASSWORD_CHARS * 4) return false;
  const key = await scrypt(password, parsed.salt, parsed.params);
  return timingSafeEqual(key, parsed.key);
}

/**
 * Credential id of a stored hash: "password:<12 hex>". Sessions made by a password login
 * name it; a new password has a new id, so its predecessor's sessions stop being valid
 * (like a rotated token's). Derived from the hash (salted), so it reveals nothing.
 */
export function passwordCredential(stored: string): string {
  return `password:${createHash('sha256').update(stored).digest('hex').slice(0, 12)}`;
}

export function isPasswordCredential(credential: string): boolean {
  return credential.startsWith('password:');
}

export interface PasswordKeeper {
  /** The current password's credential id; undefined when no password is set. */
  credential(): string | undefined;
  /** The credential id the password matched (the hash current when the check began), or undefined. */
  verify(password: string): Promise<string | undefined>;
  /** Re-reads the store (after `porthole password set`); returns the previous credential if it changed. */
  reload(): { changed: boolean; oldCredential: string | undefined };
}

/** Reads the hash from the store; `required` makes a missing or unreadable one PASSWORD_NOT_SET. */
export function createPasswordKeeper(store: SecretStore, required: boolean): PasswordKeeper {
  const read = (): string | undefined => {
    const stored = store.get(PASSWORD_STORE_KEY);
    if (stored === undefined) {
      if (required) {
        throw new PortholeError(
          'PASSWORD_NOT_SET',
          `auth.mode is "password" but no password is set (looked in the ${store.describe()}). ` +
            'Set one with `porthole password set` (it reads the password from stdin or a no-echo prompt), then start again.',
        );
      }
      return undefined;
    }
    if (!parsePasswordHash(stored)) {
      throw new PortholeError(
        'PASSWORD_NOT_SET',
        `the stored password hash (${store.describe()}, entry ${PASSWORD_STORE_KEY}) is not one porthole wrote; ` +
          'set the password again with `porthole password set`.',
      );
    }
    return stored;
  };
  let stored = read();
  let cred = stored === undefined ? undefined : passwordCredential(stored);
  return {
    credential: () => cred,
    async verify(password) {
      const current = stored;
      if (current === undefined) return undefined;
      return (await verifyPassword(password, current)) ? passwordCredential(current) : undefined;
    },
    reload() {
      const oldCredential = cred;
      // A store that became unreadable keeps the old hash rather than failing open or closed silently.
      let next: string | undefined;
      try {
        next = store.get(PASSWORD_STORE_KEY);
      } catch {
        return { changed: false, oldCredential };
      }
      if (next !== undefined && !parsePasswordHash(next)) return { changed: false, oldCredential };
      stored = next;
      cred = next === undefined ? undefined : passwordCredential(next);
      return { changed: cred !== oldCredential, oldCredential };
    },
  };
}

export interface PasswordThrottleOptions {
  /** Attempts allowed at once, across all clients (the bucket size). Default 10. */
  burst?: number;
  /** Attempts regained per second. Default 1. */
  perSecond?: number;
  /** scrypt runs at once; further attempts wait their turn by being refused. Default 2. */
  concurrency?: number;
  now?: () => number;
}

export interface PasswordThrottle {
  /**
   * Takes one attempt, or says how many seconds to wait. Call `done(succeeded)` once the
   * attempt has been verified: a right password gives its attempt back, so only guesses
   * drain the bucket.
   */
  take(): { ok: true; done(succeeded: boolean): void } | { ok: false; retryAfterSeconds: number };
}

/**
 * The global throttle on password attempts: a token bucket over every client together,
 * plus a cap on concurrent scrypt runs (each costs CPU and ~32 MiB). Wrong passwords drain the
 * bucket (a right one gives its attempt back). It bounds the guessing
 * rate of an attacker with many addresses, which per-client bans cannot; the price is that
 * such an attacker can delay the owner's password login (tokens, one-time links and the CLI
 * are unaffected) — documented in docs/security.md.
 */
export function createPasswordThrottle(options: PasswordThrottleOptions = {}): PasswordThrottle {
  const burst = options.burst ?? 10;
  const perSecond = options.perSecond ?? 1;
  const concurrency = options.concurrency ?? 2;
  const now = options.now ?? Date.now;
  let tokens = burst;
  let last = now();
  let running = 0;
  return {
    take() {
      const t = now();
      tokens = Math.min(burst, tokens + ((t - last) / 1000) * perSecond);
      last = t;
      if (tokens < 1) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
      if (running >= concurrency) return { ok: false, retryAfterSeconds: 1 };
      tokens -= 1;
      running++;
      let released = false;
      return {
        ok: true,
        done(succeeded) {
          if (released) return;
          released = true;
          running--;
          if (succeeded) tokens = Math.min(burst, tokens + 1);
        },
      };
    },
  };
}
