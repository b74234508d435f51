// Pairing codes (src/pairing/codes.ts): long and short codes name one pairing; 5 minutes;
// single use, a replay even a moment later fails; a short code is burnt by 5 wrong attempts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCodeStore, formatShortCode, normalizeShortCode } from '../../src/pairing/codes.js';
import { clock } from '../helpers/clock.js';

const GRANT = { credential: 'token:abc', scope: 'read' as const, deviceExpiresAt: null, requireApproval: true };
const MINUTE = 60_000;

test('issue: a 256-bit long code and a 10-character Crockford short code', () => {
  const store = createCodeStore();
  const a = store.issue(GRANT);
  assert.match(a.code, /^phc_[A-Za-z0-9_-]{43}$/);
  assert.match(a.shortCode, /^[0-9A-HJKMNP-TV-Z]{10}$/);
  assert.match(formatShortCode(a.shortCode), /^[0-9A-Z]{5}-[0-9A-Z]{5}$/);
  assert.notEqual(store.issue(GRANT).shortCode, a.shortCode);
});

test('short codes: dash, spaces and case ignored; look-alikes read as digits', () => {
  assert.equal(normalizeShortCode('abcde-fghjk'), 'ABCDEFGHJK');
  assert.equal(normalizeShortCode(' ab cde fghjk '), 'ABCDEFGHJK');
  assert.equal(normalizeShortCode('oOiIl-00000'), '0011100000');
  assert.equal(normalizeShortCode('ABCDE-FGHJU'), undefined, 'U is not Crockford');
  assert.equal(normalizeShortCode('ABCDE'), undefined);
  const store = createCodeStore();
  const { shortCode } = store.issue(GRANT);
  const typed = `${shortCode.slice(0, 5).toLowerCase()}-${shortCode.slice(5)}`;
  assert.deepEqual(store.consumeShort(typed), { status: 'ok', grant: GRANT });
});

test('single use across both forms: a replay a millisecond later is stale', () => {
  const c = clock();
  const store = createCodeStore({ now: c.now });
  const a = store.issue(GRANT);
  assert.equal(store.consume(a.code).status, 'ok');
  c.advance(1);
  assert.deepEqual(store.consume(a.code), { status: 'stale' });
  assert.deepEqual(store.consumeShort(a.shortCode), { status: 'stale' });
  const b = store.issue(GRANT);
  assert.equal(store.consumeShort(b.shortCode).status, 'ok');
  assert.deepEqual(store.consume(b.code), { status: 'stale' });
});

test('expiry: 5 minutes by default, for both forms', () => {
  const c = clock();
  const store = createCodeStore({ now: c.now });
  const a = store.issue(GRANT);
  const b = store.issue(GRANT);
  assert.equal(a.expiresAt, c.now() + 5 * MINUTE);
  c.advance(5 * MINUTE - 1);
  assert.equal(store.consume(a.code).status, 'ok');
  c.advance(1);
  assert.deepEqual(store.consumeShort(b.shortCode), { status: 'stale' });
  assert.deepEqual(store.consume(b.code), { status: 'stale' });
});

test('5 wrong short codes in total burn every live short code, the right one included; long codes keep working', () => {
  const store = createCodeStore();
  const a = store.issue(GRANT);
  const wrong = (i: number) => {
    // A well-formed code that is not a's (a clash is 2^-50 away; still, step around it).
    let w = `${i}`.padStart(10, 'Z');
    if (w === a.shortCode) w = w.replace(/^Z/, 'Y');
    return w;
  };
  for (let i = 0; i < 4; i++) assert.deepEqual(store.consumeShort(wrong(i)), { status: 'unknown' });
  // Malformed input cannot match anything and is not an attempt.
  assert.deepEqual(store.consumeShort('nope'), { status: 'unknown' });
  const b = store.issue(GRANT); // issued after 4 wrong attempts: has its own budget
  assert.deepEqual(store.consumeShort(wrong(4)), { status: 'unknown' });
  assert.deepEqual(store.consumeShort(a.shortCode), { status: 'stale' }, 'burnt after the 5th wrong attempt');
  assert.equal(store.consume(a.code).status, 'ok', 'the QR code (256 bits) is not burnt by wrong short codes');
  assert.equal(store.consumeShort(b.shortCode).status, 'ok', 'a code with 1 wrong attempt still works');
});

test('revokeCredential burns the outstanding codes of that credential only', () => {
  const store = createCodeStore();
  const a = store.issue({ credential: 'device:1', scope: 'admin' });
  const b = store.issue({ credential: 'token:x', scope: 'admin' });
  store.revokeCredential('device:1');
  assert.deepEqual(store.consume(a.code), { status: 'stale' });
  assert.equal(store.consume(b.code).status, 'ok');
});
