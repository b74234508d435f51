// The gateway's master token at run time: checks presented tokens in constant time,
// recognises recently rotated ones (stale: refused, but not counted as a guess), and
// rotates without a restart.
import { createHash, timingSafeEqual } from 'node:crypto';
import { PortholeError } from '../errors.js';
import type { StatePaths } from '../secrets/paths.js';
import { readState, updateState } from '../secrets/state.js';
import type { ResolvedToken, SecretStore } from '../secrets/store.js';
import { rotateStoredToken } from '../secrets/store.js';
import { digest, digestHex } from '../secrets/token.js';

/** Retired token digests are remembered this long and at most this many. */
const RETIRED_MS = 30 * 24 * 3600_000;
const RETIRED_MAX = 16;

interface Retired {
  digest: string;
  at: number;
}

export type TokenCheck = 'ok' | 'stale' | 'wrong';

export interface TokenKeeper {
  readonly source: ResolvedToken['source'];
  readonly describe: string;
  /** Id of the current token's credential: "token:<12 hex of its SHA-256>" (not secret). */
  credential(): string;
  check(presented: string): TokenCheck;
  /**
   * Checks a proof keyed by SHA-256(token) (the control plane's HMAC): `verify` runs with the
   * current token's digest, then with each recently retired one (→ "stale").
   */
  checkKeyed(verify: (key: Buffer) => boolean): TokenCheck;
  /** Issues a new token into the store; the old one is refused from now on. */
  rotate(): { oldCredential: string; newCredential: string };
  /** The token itself, for the library's owner and the CLI on this host. Never sent by an endpoint. */
  reveal(): string;
}

export function credentialOf(token: string): string {
  return `token:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

export function createTokenKeeper(resolved: ResolvedToken, paths: StatePaths | undefined, store: SecretStore | undefined): TokenKeeper {
  let token = resolved.token;
  let tokenDigest = digest(token);
  let tokenBytes = Buffer.from(token, 'utf8');
  let scratch = Buffer.alloc(tokenBytes.length);
  /**
   * Constant time in the token's content and length: the presented string is copied into a
   * buffer of the token's length and compared whole (~0.15 µs; a SHA-256 of it ~0.4–1 µs, once
   * per request). Tokens are ASCII (validateSuppliedToken), so equal bytes and equal lengths
   * mean equal strings; the final === runs only on a match and reveals nothing.
   */
  const matches = (presented: string): boolean => {
    scratch.fill(0);
    const written = scratch.write(presented, 'utf8');
    return timingSafeEqual(scratch, tokenBytes) && written === tokenBytes.length && presented === token;
  };
  let cred = credentialOf(token);
  let retired: Retired[] = [];
  if (paths) {
    const raw = readState(paths)['retiredTokens'];
    if (Array.isArray(raw)) {
      retired = raw.filter((r): r is Retired => typeof r?.digest === 'string' && typeof r?.at === 'number');
    }
  }

  return {
    source: resolved.source,
    describe: resolved.describe,
    credential: () => cred,
    check(presented) {
      if (matches(presented)) return 'ok';
      const hex = digestHex(presented);
      const now = Date.now();
      // Digest comparison by string: the digest of a guess reveals nothing about a token.
      return retired.some((r) => r.digest === hex && now - r.at < RETIRED_MS) ? 'stale' : 'wrong';
    },
    checkKeyed(verify) {
      if (verify(tokenDigest)) return 'ok';
      const now = Date.now();
      return retired.some((r) => now - r.at < RETIRED_MS && verify(Buffer.from(r.digest, 'hex'))) ? 'stale' : 'wrong';
    },
    rotate() {
      if (resolved.source !== 'store' || !paths || !store) {
        throw new PortholeError(
          'TOKEN_FIXED',
          `The gateway token is supplied by ${resolved.describe}; porthole cannot rotate it. ` +
            'Put a new token there and restart, or remove it to let porthole manage the token.',
        );
      }
      const oldCredential = cred;
      const now = Date.now();
      retired = [{ digest: tokenDigest.toString('hex'), at: now }, ...retired]
        .filter((r) => now - r.at < RETIRED_MS)
        .slice(0, RETIRED_MAX);
      token = rotateStoredToken(paths, store);
      tokenDigest = digest(token);
      tokenBytes = Buffer.from(token, 'utf8');
      scratch = Buffer.alloc(tokenBytes.length);
      cred = credentialOf(token);
      const keep = retired;
      updateState(paths, (s) => {
        s['retiredTokens'] = keep;
      });
      return { oldCredential, newCredential: cred };
    },
    reveal: () => token,
  };
}
