// Tests for src/auth/password.ts (scrypt hashes, the keeper that re-reads the secret store,
// the global throttle) and the pure parts of src/gateway/login.ts (the same-site `next`
// rule and the form, which never reflects input unescaped).
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  PASSWORD_STORE_KEY,
  createPasswordKeeper,
  createPasswordThrottle,
  hashPassword,
  parsePasswordHash,
  passwordCredential,
  passwordProblem,
  verifyPassword,
} from '../../src/auth/password.js';
import { isPortholeError } from '../../src/errors.js';
import { loginPage, safeNext } from '../../src/gateway/login.js';
import { createFileSecretStore } from '../../src/secrets/store.js';
import { tempDir } from '../helpers/servers.js';

const GOOD = 'correct horse battery staple';

test('hashPassword: PHC scrypt string, salted, verifies only the right password', async () => {
  const a = await hashPassword(GOOD);
  const b = await hashPassword(GOOD);
  assert.match(a, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, 'a fresh salt each time');
  assert.ok(!a.includes(GOOD));
  assert.equal(await verifyPassword(GOOD, a), true);
  assert.equal(await verifyPassword(`${GOOD} `, a), false);
  assert.equal(await verifyPassword('', a), false);
  assert.equal(await verifyPassword('x'.repeat(5000), a), false, 'absurd inputs are refused before hashing');
  assert.notEqual(passwordCredential(a), passwordCredential(b), 'a new hash is a new credential');
  assert.match(passwordCredential(a), /^password:[0-9a-f]{12}$/);
});

test('passwordProblem: length and lines, never the password itself', async () => {
  assert.equal(passwordProblem(GOOD), undefined);
  assert.equal(passwordProblem('short'), 'the password has fewer than 12 characters');
  assert.equal(passwordProblem(''), 'the password is empty');
  assert.match(passwordProblem('twelve chars\nmore') ?? '', /several lines/);
  assert.match(passwordProblem('x'.repeat(1025)) ?? '', /more than 1024/);
  // Counted in characters, not UTF-16 units: 12 emoji are 12 characters.
  assert.equal(passwordProblem('🔑'.repeat(12)), undefined);
  await assert.rejects(hashPassword('hunter2'), (e) => isPortholeError(e, 'PASSWORD_WEAK') && !e.message.includes('hunter2'));
});

test('parsePasswordHash: refuses tampered or out-of-bounds parameters', () => {
  const salt = 'A'.repeat(22);
  const key = 'B'.repeat(43);
  assert.ok(parsePasswordHash(`$scrypt$ln=15,r=8,p=1$${salt}$${key}`));
  for (const bad of [
    `$scrypt$ln=30,r=8,p=1$${salt}$${key}`, // 2^30: minutes and gigabytes per login
    `$scrypt$ln=15,r=99,p=1$${salt}$${key}`,
    `$scrypt$ln=15,r=8,p=9$${salt}$${key}`,
    `$scrypt$ln=4,r=8,p=1$${salt}$${key}`, // too cheap to have been written by porthole
    `$argon2id$v=19$m=65536,t=3,p=4$${salt}$${key}`,
    `$scrypt$ln=15,r=8,p=1$${salt}$${key.slice(1)}`,
    'plaintext-password',
    '',
  ]) {
    assert.equal(parsePasswordHash(bad), undefined, bad);
  }
});

test('createPasswordKeeper: required and missing → PASSWORD_NOT_SET; reload picks up a new hash', async () => {
  const dir = tempDir();
  try {
    const store = createFileSecretStore(join(dir.dir, 'secrets'));
    assert.throws(() => createPasswordKeeper(store, true), (e) => isPortholeError(e, 'PASSWORD_NOT_SET') && /porthole password set/.test(e.message));
    const optional = createPasswordKeeper(store, false);
    assert.equal(optional.credential(), undefined);
    assert.equal(await optional.verify(GOOD), undefined);

    const first = await hashPassword(GOOD);
    store.set(PASSWORD_STORE_KEY, first);
    assert.equal((statSync(join(dir.dir, 'secrets', PASSWORD_STORE_KEY)).mode & 0o777).toString(8), '600');
    const keeper = createPasswordKeeper(store, true);
    assert.equal(keeper.credential(), passwordCredential(first));
    assert.equal(await keeper.verify(GOOD), passwordCredential(first));
    assert.equal(await keeper.verify('wrong password here'), undefined);
    assert.deepEqual(keeper.reload(), { changed: false, oldCredential: passwordCredential(first) });

    const second = await hashPassword('another long passphrase');
    store.set(PASSWORD_STORE_KEY, second);
    assert.deepEqual(keeper.reload(), { changed: true, oldCredential: passwordCredential(first) });
    assert.equal(await keeper.verify(GOOD), undefined, 'the old password stops working');
    assert.equal(await keeper.verify('another long passphrase'), passwordCredential(second));

    // A corrupt entry is not adopted (neither fail open nor a silent lock-out), and refused at start.
    store.set(PASSWORD_STORE_KEY, 'garbage');
    assert.equal(keeper.reload().changed, false);
    assert.equal(keeper.credential(), passwordCredential(second));
    assert.throws(() => createPasswordKeeper(store, true), (e) => isPortholeError(e, 'PASSWORD_NOT_SET'));

    store.delete(PASSWORD_STORE_KEY);
    assert.deepEqual(keeper.reload(), { changed: true, oldCredential: passwordCredential(second) });
    assert.equal(keeper.credential(), undefined);
  } finally {
    dir.cleanup();
  }
});

test('createPasswordThrottle: a global bucket and a concurrency cap', () => {
  let now = 1_000_000;
  const t = createPasswordThrottle({ burst: 3, perSecond: 1, concurrency: 2, now: () => now });
  const a = t.take();
  const b = t.take();
  assert.ok(a.ok && b.ok);
  const busy = t.take();
  assert.deepEqual(busy, { ok: false, retryAfterSeconds: 1 }, 'two scrypt runs at once at most');
  a.done(false);
  a.done(false); // idempotent
  const c = t.take();
  assert.ok(c.ok, 'a slot freed up');
  b.done(false);
  c.done(true); // a right password gives its attempt back
  const d = t.take();
  assert.ok(d.ok, 'the refunded attempt');
  d.done(false);
  const empty = t.take();
  assert.equal(empty.ok, false, 'the bucket of 3 is spent');
  if (!empty.ok) assert.equal(empty.retryAfterSeconds, 1);
  now += 1000;
  const refilled = t.take();
  assert.ok(refilled.ok, 'one attempt regained per second');
  if (refilled.ok) refilled.done(false);
  assert.equal(t.take().ok, false);
});

test('safeNext: only same-site absolute paths', () => {
  const cases: [unknown, string][] = [
    ['/', '/'],
    ['/app/page?x=1#top', '/app/page?x=1#top'],
    ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
    ['//evil.example/', '/'],
    ['/\\evil.example/', '/'],
    ['\\\\evil.example', '/'],
    ['https://evil.example/', '/'],
    ['javascript:alert(1)', '/'],
    ['evil.example', '/'],
    ['/ok\r\nSet-Cookie: x=y', '/'],
    ['/\tevil', '/'],
    ['/_porthole/login', '/'],
    ['', '/'],
    [undefined, '/'],
    [42, '/'],
    [`/${'a'.repeat(3000)}`, '/'],
  ];
  for (const [input, want] of cases) assert.equal(safeNext(input), want, String(input));
});

test('loginPage: escapes the return path and carries no password', () => {
  const html = loginPage('/a"><script>alert(1)</script>');
  assert.ok(!html.includes('<script>'));
  assert.ok(html.includes('&#34;&#62;&#60;script&#62;'));
  assert.match(html, /type="password"/);
  assert.doesNotMatch(html, /value="[^"]*password/i);
  assert.match(loginPage('/', 'wrong password [AUTH_INVALID]'), /role="alert"/);
});
