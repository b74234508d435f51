// Tests for the brute-force ban table, driven by an injected clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BanTableOptions, createBanTable, groupedKey } from '../../src/auth/rate-limit.js';
import { isPortholeError } from '../../src/errors.js';
import { clock } from '../helpers/clock.js';

const MINUTE = 60_000;


test('four failures are counted, the fifth bans for about five minutes', () => {
  const c = clock();
  const table = createBanTable({ now: c.now });
  for (let i = 1; i <= 4; i++) {
    assert.deepEqual(table.recordFailure('1.2.3.4'), { banned: false, failures: i });
    c.advance(1000);
  }
  assert.deepEqual(table.check('1.2.3.4'), { banned: false, failures: 4 });
  assert.deepEqual(table.recordFailure('1.2.3.4'), { banned: true, retryAfterSeconds: 300 });
  assert.deepEqual(table.check('1.2.3.4'), { banned: true, retryAfterSeconds: 300 });
  // Other keys are untouched.
  assert.deepEqual(table.check('1.2.3.5'), { banned: false, failures: 0 });
  c.advance(60_500);
  assert.deepEqual(table.check('1.2.3.4'), { banned: true, retryAfterSeconds: 240 }); // ceil(239.5)
});

test('check records nothing', () => {
  const c = clock();
  const table = createBanTable({ now: c.now });
  for (let i = 0; i < 10; i++) assert.deepEqual(table.check('k'), { banned: false, failures: 0 });
  assert.equal(table.size, 0);
});

test('failures older than the window do not count', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, windowMs: 15 * MINUTE });
  for (let i = 0; i < 4; i++) table.recordFailure('k'); // at t0
  c.advance(10 * MINUTE);
  assert.deepEqual(table.recordFailure('k'), { banned: true, retryAfterSeconds: 300 });

  const other = createBanTable({ now: c.now, windowMs: 15 * MINUTE });
  for (let i = 0; i < 4; i++) other.recordFailure('k'); // at t1
  c.advance(15 * MINUTE); // those four have just left the window
  assert.deepEqual(other.check('k'), { banned: false, failures: 0 });
  assert.deepEqual(other.recordFailure('k'), { banned: false, failures: 1 });
});

test('the window slides: only failures within it count', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, windowMs: 10 * MINUTE });
  // One failure every 3 minutes: at most 4 fall inside any 10-minute window (t, t+3, t+6, t+9).
  for (let i = 0; i < 20; i++) {
    const state = table.recordFailure('k');
    assert.equal(state.banned, false, `failure ${i}`);
    c.advance(3 * MINUTE);
  }
  assert.deepEqual(table.check('k'), { banned: false, failures: 3 });
  // A burst on top of them bans.
  assert.equal(table.recordFailure('k').banned, false);
  assert.deepEqual(table.recordFailure('k'), { banned: true, retryAfterSeconds: 300 });
});

test('a ban expires after banMs and the key starts fresh', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxFailures: 3, banMs: 2 * MINUTE });
  for (let i = 0; i < 3; i++) table.recordFailure('k');
  assert.deepEqual(table.check('k'), { banned: true, retryAfterSeconds: 120 });
  c.advance(2 * MINUTE - 1);
  assert.deepEqual(table.check('k'), { banned: true, retryAfterSeconds: 1 });
  c.advance(1);
  assert.deepEqual(table.check('k'), { banned: false, failures: 0 });
  assert.deepEqual(table.recordFailure('k'), { banned: false, failures: 1 });
  assert.deepEqual(table.recordFailure('k'), { banned: false, failures: 2 });
  assert.equal(table.recordFailure('k').banned, true);
});

test('a failure while banned neither extends nor lifts the ban', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxFailures: 1, banMs: 10_000 });
  assert.deepEqual(table.recordFailure('k'), { banned: true, retryAfterSeconds: 10 });
  c.advance(4000);
  assert.deepEqual(table.recordFailure('k'), { banned: true, retryAfterSeconds: 6 });
  c.advance(6000);
  assert.deepEqual(table.check('k'), { banned: false, failures: 0 });
});

test('retryAfterSeconds is at least 1', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxFailures: 1, banMs: 1 });
  assert.deepEqual(table.recordFailure('k'), { banned: true, retryAfterSeconds: 1 });
});

test('reset and clear forget keys', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxFailures: 2 });
  table.recordFailure('a');
  table.recordFailure('a');
  table.recordFailure('b');
  assert.equal(table.size, 2);
  table.reset('a');
  assert.deepEqual(table.check('a'), { banned: false, failures: 0 });
  assert.deepEqual(table.check('b'), { banned: false, failures: 1 });
  assert.equal(table.size, 1);
  table.clear();
  assert.equal(table.size, 0);
  assert.deepEqual(table.check('b'), { banned: false, failures: 0 });
});

test('a flood of distinct keys never unbans a banned key and stays within maxEntries', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxEntries: 1000 });
  for (let i = 0; i < 5; i++) table.recordFailure('attacker');
  assert.equal(table.check('attacker').banned, true);
  // A victim part-way to a ban is a fair eviction target; the banned key is not.
  for (let i = 0; i < 20_000; i++) {
    table.recordFailure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    assert.ok(table.size <= 1000);
    if (i % 1000 === 0) c.advance(100);
  }
  assert.equal(table.size, 1000);
  assert.equal(table.check('attacker').banned, true);
  // The most recent keys are still counted; the oldest were evicted.
  assert.deepEqual(table.check('10.0.78.31'), { banned: false, failures: 1 }); // i = 19999
  assert.deepEqual(table.check('10.0.0.0'), { banned: false, failures: 0 });
});

test('eviction prefers expired entries over live ones', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxEntries: 3, windowMs: MINUTE, maxFailures: 3 });
  table.recordFailure('old');
  c.advance(30_000);
  table.recordFailure('live');
  table.recordFailure('live');
  table.recordFailure('fresh');
  c.advance(30_000); // 'old' has left the window; 'live' and 'fresh' have not
  table.recordFailure('new');
  assert.ok(table.size <= 3);
  assert.deepEqual(table.check('live'), { banned: false, failures: 2 });
  assert.deepEqual(table.check('fresh'), { banned: false, failures: 1 });
  assert.deepEqual(table.check('new'), { banned: false, failures: 1 });
});

test('touching a key makes it most recently used', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxEntries: 2, maxFailures: 10 });
  table.recordFailure('a');
  table.recordFailure('b');
  table.recordFailure('a'); // now b is least recently touched
  table.recordFailure('c');
  assert.deepEqual(table.check('a'), { banned: false, failures: 2 });
  assert.deepEqual(table.check('b'), { banned: false, failures: 0 });
  assert.deepEqual(table.check('c'), { banned: false, failures: 1 });
});

test('when every entry is banned, the ban that ends soonest is evicted', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxEntries: 3, maxFailures: 1, banMs: MINUTE });
  table.recordFailure('first');
  c.advance(1000);
  table.recordFailure('second');
  c.advance(1000);
  table.recordFailure('third');
  c.advance(1000);
  table.recordFailure('fourth');
  assert.equal(table.size, 3);
  assert.deepEqual(table.check('first'), { banned: false, failures: 0 });
  for (const key of ['second', 'third', 'fourth']) assert.equal(table.check(key).banned, true, key);
});

test('expired bans are evicted before live counting entries', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxEntries: 2, maxFailures: 2, banMs: 1000 });
  table.recordFailure('banned');
  table.recordFailure('banned');
  table.recordFailure('counting');
  c.advance(1000); // the ban is over
  table.recordFailure('new');
  assert.deepEqual(table.check('counting'), { banned: false, failures: 1 });
  assert.deepEqual(table.check('new'), { banned: false, failures: 1 });
  assert.equal(table.size, 2);
});

test('very long keys are tracked without storing them whole', () => {
  const c = clock();
  const table = createBanTable({ now: c.now, maxFailures: 2 });
  const long = `https://${'a'.repeat(10_000)}.example`;
  table.recordFailure(long);
  assert.deepEqual(table.check(long), { banned: false, failures: 1 });
  assert.deepEqual(table.check(`${long}x`), { banned: false, failures: 0 });
  assert.equal(table.recordFailure(long).banned, true);
});

test('invalid options throw INVALID_ARGUMENT naming the option', () => {
  const bad: [BanTableOptions, string][] = [
    [{ maxFailures: 0 }, 'invalid maxFailures'],
    [{ maxFailures: -1 }, 'invalid maxFailures'],
    [{ maxFailures: 1.5 }, 'invalid maxFailures'],
    [{ maxFailures: Number.NaN }, 'invalid maxFailures'],
    [{ windowMs: 0 }, 'invalid windowMs'],
    [{ windowMs: Number.POSITIVE_INFINITY }, 'invalid windowMs'],
    [{ banMs: -5 }, 'invalid banMs'],
    [{ maxEntries: 0 }, 'invalid maxEntries'],
    [{ maxEntries: 2.5 }, 'invalid maxEntries'],
    [{ now: 42 as unknown as () => number }, 'invalid now'],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => createBanTable(options),
      (err: unknown) => isPortholeError(err, 'INVALID_ARGUMENT') && err.message === message,
      message,
    );
  }
  assert.doesNotThrow(() => createBanTable({ maxFailures: 1, windowMs: 1, banMs: 1, maxEntries: 1 }));
});

test('grouped keys: each is banned at the limit, and all of them once the group reaches ten times it', () => {
  const c = clock();
  const table = createBanTable({ now: c.now });
  const k = (n: number) => groupedKey(`xff:198.51.100.${n}`, 'unattributed');
  // One client of the group is banned on its own; the others are not.
  for (let i = 0; i < 5; i++) table.recordFailure(k(1));
  assert.equal(table.check(k(1)).banned, true);
  assert.equal(table.check(k(2)).banned, false);
  // A new key per guess: the group's count goes on (5 so far) and bans every key of it at 50.
  for (let n = 2; n < 46; n++) assert.equal(table.recordFailure(k(n)).banned, false, `guess ${n}`);
  assert.equal(table.recordFailure(k(46)).banned, true);
  assert.equal(table.check(k(200)).banned, true, 'a fresh key of the group');
  // Outside the group nothing changed; the group's ban ends like any other.
  assert.equal(table.check('198.51.100.1').banned, false);
  assert.equal(table.check(groupedKey('xff:203.0.113.1', 'other')).banned, false);
  c.advance(5 * MINUTE + 1);
  assert.equal(table.check(k(200)).banned, false);
  // An operator's reset of a grouped key clears its group too.
  for (let n = 0; n < 50; n++) table.recordFailure(k(300 + n));
  assert.equal(table.check(k(1)).banned, true);
  table.reset(k(1));
  assert.equal(table.check(k(1)).banned, false);
});
