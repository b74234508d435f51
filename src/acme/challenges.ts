// The HTTP-01 side of ACME (RFC 8555 §8.3) shared by the desk and the relay: the key
// authorizations of the orders in flight, answered for `/.well-known/acme-challenge/<token>`.
import type { AcmeChallengeStore } from './client.js';

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
/** A token is base64url; anything else cannot be one of ours. */
const TOKEN_RE = /^[A-Za-z0-9_-]{1,256}$/;

export interface ChallengeResponder extends AcmeChallengeStore {
  /** The key authorization to answer for a request target, or undefined (not a challenge path, or not ours). */
  answer(target: string): string | undefined;
  clear(): void;
}

export function createChallengeResponder(): ChallengeResponder {
  const pending = new Map<string, string>();
  return {
    set: (token, keyAuthorization) => void pending.set(token, keyAuthorization),
    delete: (token) => void pending.delete(token),
    answer(target) {
      if (!target.startsWith(ACME_CHALLENGE_PREFIX)) return undefined;
      const token = target.slice(ACME_CHALLENGE_PREFIX.length);
      return TOKEN_RE.test(token) ? pending.get(token) : undefined;
    },
    clear: () => pending.clear(),
  };
}
