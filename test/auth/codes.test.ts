// Tests for src/auth/codes.ts: one-time codes are single use, short-lived, and a used or
// expired code is "stale" (not a guess) rather than "unknown" (DESIGN §3.3).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CodeGrant, createCodeStore } from '../../src/auth/codes.js';
import { generateCode } from '../../src/secrets/token.js';
import { clock } from '../helpers/clock.js';

const MINUTE = 60_000;
const GRANT: CodeGrant = { credential: 'token:abc', scope: 'admin' };


test('issue: a phc_ code with 256 bits and an expiry', () => {
  const c = clock();
  const store = createCodeStore({ now: c.now });
  const a = store.issue(GRANT);
  const b = store.issue(GRANT);
  assert.match(a.code, /^phc_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.code, b.code);
  assert.equal(a.expiresAt, c.now() + 5 * MINUTE);
});

test('single use: the second consume is stale, and stays stale', () => {
  const store = createCodeStore();
  const { code } = store.issue({ credential: 'device:x', scope: 'read' });
  assert.deepEqual(store.consume(code), { status: 'ok', grant: { credential: 'device:x', scope: 'read' } });
  assert.deepEqual(store.consume(code), { status: 'stale' });
  assert.deepEqual(store.consume(code), { status: 'stale' });
});

test('unknown codes are unknown, near misses included', () => {
  const store = createCodeStore();
  const { code } = store.issue(GRANT);
  const flipped = code.slice(0, -1) + (code.endsWith('A') ? 'B' : 'A');
  for (const bad of [generateCode(), flipped, code.slice(0, -1), `${code}x`, '', 'phc_', code.toUpperCase()]) {
    assert.deepEqual(store.consume(bad), { status: 'unknown' }, bad);
  }
  // Guessing did not burn the real code.
  assert.equal(store.consume(code).status, 'ok');
});

test('expiry: a code is good until ttl, then stale', () => {
  const c = clock();
  const store = createCodeStore({ now: c.now, ttlMs: MINUTE });
  const early = store.issue(GRANT).code;
  const late = store.issue(GRANT).code;
  c.advance(MINUTE - 1);
  assert.equal(store.consume(early).status, 'ok');
  c.advance(1);
  assert.deepEqual(store.consume(late), { status: 'stale' }, 'at expiresAt');
  assert.deepEqual(store.consume(late), { status: 'stale' });
});

test('stale codes are forgotten after staleMs and become unknown', () => {
  const c = clock();
  const store = createCodeStore({ now: c.now, ttlMs: MINUTE, staleMs: 10 * MINUTE });
  const used = store.issue(GRANT).code;
  const expired = store.issue(GRANT).code;
  assert.equal(store.consume(used).status, 'ok');
  c.advance(MINUTE + 10 * MINUTE); // used 11 min ago; expired 10 min ago
  store.issue(GRANT); // the sweep runs on issue
  assert.equal(store.consume(used).status, 'unknown');
  assert.equal(store.consume(expired).status, 'stale', 'exactly staleMs after expiry: still stale');
});

test("revokeCredential makes that credential's outstanding codes stale, not others'", () => {
  const store = createCodeStore();
  const a1 = store.issue({ credential: 'token:old', scope: 'admin' }).code;
  const a2 = store.issue({ credential: 'token:old', scope: 'read' }).code;
  const b = store.issue({ credential: 'token:new', scope: 'admin' }).code;
  store.revokeCredential('token:old');
  store.revokeCredential('nobody');
  assert.deepEqual(store.consume(a1), { status: 'stale' });
  assert.deepEqual(store.consume(a2), { status: 'stale' });
  assert.deepEqual(store.consume(b), { status: 'ok', grant: { credential: 'token:new', scope: 'admin' } });
  // A code issued after the revocation is good.
  const a3 = store.issue({ credential: 'token:old', scope: 'admin' }).code;
  assert.equal(store.consume(a3).status, 'ok');
});

test('1000 concurrent consumes of one code: exactly one wins', async () => {
  const store = createCodeStore();
  const { code } = store.issue(GRANT);
  const results = await Promise.all(
    Array.from({ length: 1000 }, async () => {
      await Promise.resolve();
      return store.consume(code);
    }),
  );
  const counts = { ok: 0, stale: 0, unknown: 0 };
  for (const r of results) counts[r.status]++;
  assert.deepEqual(counts, { ok: 1, stale: 999, unknown: 0 });
});

test('many codes outstanding at once are independent', () => {
  const store = createCodeStore();
  const codes = Array.from({ length: 50 }, (_, i) => store.issue({ credential: `device:${i}`, scope: 'admin' }).code);
  codes.forEach((code, i) => {
    const r = store.consume(code);
    assert.ok(r.status === 'ok' && r.grant.credential === `device:${i}`);
  });
});

test('maxCodes: the oldest outstanding codes are dropped', () => {
  const store = createCodeStore({ maxCodes: 3 });
  const codes = Array.from({ length: 6 }, () => store.issue(GRANT).code);
  // The newest three are still good.
  for (const code of codes.slice(-3)) assert.equal(store.consume(code).status, 'ok');
  assert.equal(store.consume(codes[0]!).status, 'unknown');
  assert.equal(store.consume(codes[1]!).status, 'unknown');
});

test('maxCodes is an exact bound', {
}, () => {
  const store = createCodeStore({ maxCodes: 2 });
  const codes = Array.from({ length: 3 }, () => store.issue(GRANT).code);
  assert.equal(store.consume(codes[0]!).status, 'unknown');
});
