// The brute-force ban table (DESIGN §3 "Ban check"): counts failed porthole credentials per
// client key in a sliding window and bans a key that reaches the limit, in bounded memory.
import { createHash } from 'node:crypto';
import { PortholeError } from '../errors.js';

export interface BanTableOptions {
  /** Failures within `windowMs` that trigger a ban. Default 5. */
  maxFailures?: number;
  /** Sliding window for counting failures. Default 15 min. */
  windowMs?: number;
  /** Ban length. Default 5 min. */
  banMs?: number;
  /** Bound on tracked keys (memory cap under a flood of distinct addresses). Default 10000. */
  maxEntries?: number;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

export type BanState = { banned: false; failures: number } | { banned: true; retryAfterSeconds: number };

/**
 * A key that also counts toward a shared `group`, banned at GROUP_FACTOR times the limit: for
 * clients that choose their own key (classify.ts: loopback requests keyed by the
 * X-Forwarded-For or Origin they send), so that a new key per guess buys at most the group's
 * budget, while honest clients behind one proxy are still banned one by one.
 */
export function groupedKey(key: string, group: string): string {
  return `${key}${GROUP_SEPARATOR}${group}`;
}

/** A group bans at this many times maxFailures. */
export const GROUP_FACTOR = 10;
const GROUP_SEPARATOR = '\u0000';

export interface BanTable {
  /** The key's state now (a grouped key: banned if it or its group is); records nothing. */
  check(key: string): BanState;
  /** Records one failure (a grouped key: for the group too); returns the state after it (banned on the maxFailures-th within the window). */
  recordFailure(key: string): BanState;
  /**
   * Forgets a key: an operator's unban, or tests. Not for successful logins: a key can be
   * shared (an Origin, an unattributed proxy address), and one valid credential must not
   * wipe the count of guesses at another.
   */
  reset(key: string): void;
  /** Keys tracked (banned or counting). */
  readonly size: number;
  clear(): void;
}

const DEFAULT_MAX_FAILURES = 5;
const DEFAULT_WINDOW_MS = 15 * 60_000;
const DEFAULT_BAN_MS = 5 * 60_000;
const DEFAULT_MAX_ENTRIES = 10_000;
/** Longer keys (an Origin is attacker-chosen text) are stored as a digest, so that memory stays bounded. */
const MAX_KEY_LENGTH = 256;

/** One tracked key, linked into the list for its state (counting or banned). */
interface Entry {
  key: string;
  /** Counting: failure times, oldest first, fewer than maxFailures of them. Banned: empty. */
  failures: number[];
  /** When the ban ends; undefined while counting. */
  until: number | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/**
 * A doubly linked list: O(1) append, unlink and pop-front. (A Map's insertion order is not
 * enough: V8 leaves deleted slots in place until a rehash, so repeatedly reading the first
 * key of a Map that is deleted from the front costs O(deleted).)
 */
class EntryList {
  head: Entry | undefined;
  tail: Entry | undefined;
  size = 0;

  push(entry: Entry): void {
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail === undefined) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    this.size++;
  }

  remove(entry: Entry): void {
    if (entry.prev === undefined) this.head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === undefined) this.tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = undefined;
    this.size--;
  }

  clear(): void {
    this.head = this.tail = undefined;
    this.size = 0;
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new PortholeError('INVALID_ARGUMENT', `invalid ${name}`);
  return value;
}

function storedKey(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** The stored keys of a raw key: itself, and for a grouped key its group (own namespace: a leading separator). */
function storedKeys(raw: string): [string] | [string, string] {
  const at = raw.indexOf(GROUP_SEPARATOR);
  if (at < 0) return [storedKey(raw)];
  return [storedKey(raw.slice(0, at)), GROUP_SEPARATOR + storedKey(raw.slice(at + 1))];
}

/** The later-ending of two states (banned wins over counting). */
function worse(a: BanState, b: BanState | undefined): BanState {
  if (b === undefined) return a;
  if (a.banned && b.banned) return a.retryAfterSeconds >= b.retryAfterSeconds ? a : b;
  return a.banned ? a : b.banned ? b : a;
}

/**
 * One Map for lookup, and two lists kept in expiry order so that every eviction is O(1)
 * from the front:
 * - `counting`, moved to the back on each failure: least-recently-touched first, which is
 *   also the entry whose newest failure is oldest, so expired entries form a prefix of it;
 * - `banned`, appended when the ban starts: with a fixed ban length the ban that ends
 *   soonest is first, and expired bans form a prefix.
 * (With a clock that steps backwards the order is approximate; every answer still checks
 * the stored times, so only eviction choices, never ban decisions, are affected.)
 */
export function createBanTable(options: BanTableOptions = {}): BanTable {
  const maxFailures = positiveInteger(options.maxFailures, DEFAULT_MAX_FAILURES, 'maxFailures');
  const windowMs = positiveInteger(options.windowMs, DEFAULT_WINDOW_MS, 'windowMs');
  const banMs = positiveInteger(options.banMs, DEFAULT_BAN_MS, 'banMs');
  const maxEntries = positiveInteger(options.maxEntries, DEFAULT_MAX_ENTRIES, 'maxEntries');
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new PortholeError('INVALID_ARGUMENT', 'invalid now');
  }
  const now = options.now ?? Date.now;

  const entries = new Map<string, Entry>();
  const counting = new EntryList();
  const banned = new EntryList();

  const listOf = (entry: Entry) => (entry.until === undefined ? counting : banned);
  const forget = (entry: Entry): void => {
    listOf(entry).remove(entry);
    entries.delete(entry.key);
  };
  const bannedState = (until: number, at: number): BanState => ({
    banned: true,
    retryAfterSeconds: Math.max(1, Math.ceil((until - at) / 1000)),
  });
  /** Drops failures that no longer count at `at` (older than windowMs); returns how many remain. */
  const dropOld = (entry: Entry, at: number): number => {
    let old = 0;
    while (old < entry.failures.length && at - entry.failures[old]! >= windowMs) old++;
    if (old > 0) entry.failures.splice(0, old);
    return entry.failures.length;
  };

  /** Drops expired entries from the front of both lists; amortised O(1) (each entry leaves once). */
  const pruneExpired = (at: number): void => {
    while (banned.head !== undefined && banned.head.until! <= at) forget(banned.head);
    while (counting.head !== undefined && dropOld(counting.head, at) === 0) forget(counting.head);
  };

  /** Makes room for one new key: expired first, then the least-recently-touched counting key, then the ban ending soonest. */
  const makeRoom = (at: number): void => {
    pruneExpired(at);
    while (entries.size >= maxEntries) {
      const victim = counting.head ?? banned.head;
      if (victim === undefined) return;
      forget(victim);
    }
  };

  const limitOf = (key: string): number => (key.startsWith(GROUP_SEPARATOR) ? maxFailures * GROUP_FACTOR : maxFailures);

  function checkOne(key: string): BanState {
      const entry = entries.get(key);
      if (entry === undefined) return { banned: false, failures: 0 };
      const at = now();
      if (entry.until !== undefined) {
        if (entry.until > at) return bannedState(entry.until, at);
        forget(entry); // ban over: the key starts fresh
        return { banned: false, failures: 0 };
      }
      const failures = dropOld(entry, at);
      if (failures === 0) forget(entry);
      return { banned: false, failures };
  }

  function recordOne(key: string): BanState {
      const at = now();
      let entry = entries.get(key);
      if (entry?.until !== undefined) {
        // Already banned: a failure that raced the ban check neither extends nor resets it.
        if (entry.until > at) return bannedState(entry.until, at);
        forget(entry);
        entry = undefined;
      }
      if (entry === undefined) {
        makeRoom(at);
        entry = { key, failures: [], until: undefined, prev: undefined, next: undefined };
        entries.set(key, entry);
      } else {
        counting.remove(entry);
        dropOld(entry, at);
      }
      entry.failures.push(at);
      if (entry.failures.length >= limitOf(key)) {
        entry.failures = [];
        entry.until = at + banMs;
        banned.push(entry);
        return bannedState(entry.until, at);
      }
      counting.push(entry); // most recently touched last
      return { banned: false, failures: entry.failures.length };
  }

  return {
    check(rawKey) {
      const [key, group] = storedKeys(rawKey);
      return worse(checkOne(key), group === undefined ? undefined : checkOne(group));
    },

    recordFailure(rawKey) {
      const [key, group] = storedKeys(rawKey);
      // The group's count goes on while the key is banned: guesses under other keys add up there.
      return worse(recordOne(key), group === undefined ? undefined : recordOne(group));
    },

    reset(rawKey) {
      for (const key of storedKeys(rawKey)) {
        const entry = entries.get(key);
        if (entry !== undefined) forget(entry);
      }
    },

    get size() {
      return entries.size;
    },

    clear() {
      entries.clear();
      counting.clear();
      banned.clear();
    },
  };
}
