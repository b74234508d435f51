// Tests for src/auth/sessions.ts: server-side sessions with idle and absolute expiry
// (injected clock), revocation, the LRU bound and persistence (0600, digests only).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { createSessionStore } from '../../src/auth/sessions.js';
import { clock } from '../helpers/clock.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
const freshFile = () => path.join(dir, `sessions-${++fileCount}.json`);


test('create returns an unguessable id; lookup finds the record', () => {
  const c = clock();
  const store = createSessionStore({ now: c.now });
  const a = store.create('token:aaaa', 'admin');
  const b = store.create('token:aaaa', 'read');
  assert.match(a.id, /^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
  assert.notEqual(a.id, b.id);
  assert.equal(a.maxAgeSeconds, 30 * 24 * 3600);
  assert.equal(store.size, 2);
  assert.deepEqual(store.lookup(a.id), { credential: 'token:aaaa', scope: 'admin', createdAt: c.now(), lastSeenAt: c.now() });
  assert.equal(store.lookup(b.id)?.scope, 'read');
});

test('lookup refuses unknown, malformed and near-miss ids', () => {
  const store = createSessionStore();
  const { id } = store.create('token:aaaa', 'admin');
  const flipped = (id[0] === 'A' ? 'B' : 'A') + id.slice(1);
  for (const bad of ['', 'x', flipped, id.slice(0, -1), `${id}x`, id.toUpperCase() === id ? id.toLowerCase() : id.toUpperCase(), 'a'.repeat(101), 'a'.repeat(43)]) {
    assert.equal(store.lookup(bad), undefined, bad);
  }
  assert.ok(store.lookup(id));
});

test('maxAgeSeconds follows maxMs', () => {
  const store = createSessionStore({ maxMs: 90_500 });
  assert.equal(store.create('c', 'admin').maxAgeSeconds, 90);
});

test('idle expiry: use keeps a session alive, idleness ends it', () => {
  const c = clock();
  const store = createSessionStore({ now: c.now, idleMs: HOUR, maxMs: DAY });
  const { id } = store.create('token:a', 'admin');
  for (let i = 0; i < 5; i++) {
    c.advance(HOUR - 1);
    assert.ok(store.lookup(id), `still alive after use #${i}`);
  }
  assert.equal(store.lookup(id)?.lastSeenAt, c.now());
  c.advance(HOUR);
  assert.equal(store.lookup(id), undefined, 'idle for exactly idleMs: expired');
  c.advance(-HOUR); // even if the clock came back, the expired record is gone
  assert.equal(store.lookup(id), undefined);
  assert.equal(store.size, 0);
});

test('absolute expiry: an active session still ends at maxMs', () => {
  const c = clock();
  const store = createSessionStore({ now: c.now, idleMs: 2 * HOUR, maxMs: 5 * HOUR });
  const { id } = store.create('token:a', 'admin');
  for (let i = 0; i < 4; i++) {
    c.advance(HOUR);
    assert.ok(store.lookup(id));
  }
  c.advance(HOUR - 1);
  assert.ok(store.lookup(id), 'one ms before maxMs');
  c.advance(1);
  assert.equal(store.lookup(id), undefined, 'at maxMs');
});

test('default expiry: 7 days idle, 30 days absolute', () => {
  const c = clock();
  const store = createSessionStore({ now: c.now });
  const idle = store.create('c', 'admin').id;
  const active = store.create('c', 'admin').id;
  c.advance(7 * DAY - 1);
  assert.ok(store.lookup(active));
  c.advance(1);
  assert.equal(store.lookup(idle), undefined, 'idle for 7 days');
  assert.ok(store.lookup(active));
  for (let i = 0; i < 3; i++) {
    c.advance(7 * DAY - 1);
    assert.ok(store.lookup(active));
  }
  c.advance(2 * DAY + 2); // now 30 days since creation, less one ms
  assert.ok(store.lookup(active));
  c.advance(1);
  assert.equal(store.lookup(active), undefined);
});

test('delete ends one session', () => {
  const store = createSessionStore();
  const a = store.create('c', 'admin').id;
  const b = store.create('c', 'admin').id;
  store.delete(a);
  store.delete('never-existed-aaaaaaaaaaaaaaaaaaaaaaa');
  assert.equal(store.lookup(a), undefined);
  assert.ok(store.lookup(b));
});

test('revokeCredential ends exactly that credential’s sessions', () => {
  const store = createSessionStore();
  const a1 = store.create('token:old', 'admin').id;
  const a2 = store.create('token:old', 'read').id;
  const b = store.create('device:phone', 'admin').id;
  const c = store.create('token:older', 'admin').id;
  assert.equal(store.revokeCredential('token:old'), 2);
  assert.equal(store.lookup(a1), undefined);
  assert.equal(store.lookup(a2), undefined);
  assert.ok(store.lookup(b));
  assert.ok(store.lookup(c), 'a credential sharing a prefix is untouched');
  assert.equal(store.revokeCredential('token:old'), 0);
  assert.equal(store.revokeCredential('nobody'), 0);
  assert.equal(store.size, 2);
});

test('revokeWhere ends sessions whose credential is no longer valid', () => {
  const store = createSessionStore();
  const ids = ['token:new', 'token:old', 'device:a', 'device:b'].map((cred) => ({ cred, id: store.create(cred, 'admin').id }));
  const valid = new Set(['token:new', 'device:b']);
  const seen: string[] = [];
  const n = store.revokeWhere((cred) => {
    seen.push(cred);
    return valid.has(cred);
  });
  assert.equal(n, 2);
  assert.deepEqual(seen.sort(), ['device:a', 'device:b', 'token:new', 'token:old']);
  for (const { cred, id } of ids) assert.equal(store.lookup(id) !== undefined, valid.has(cred), cred);
});

test('maxSessions: the least recently used session goes first', () => {
  const c = clock();
  const store = createSessionStore({ now: c.now, maxSessions: 3 });
  const s1 = store.create('c', 'admin').id;
  c.advance(1);
  const s2 = store.create('c', 'admin').id;
  c.advance(1);
  const s3 = store.create('c', 'admin').id;
  c.advance(1);
  assert.ok(store.lookup(s1)); // s1 is now the most recently used; s2 the least
  const s4 = store.create('c', 'admin').id;
  assert.equal(store.size, 3);
  assert.equal(store.lookup(s2), undefined, 'least recently used evicted');
  for (const id of [s1, s3, s4]) assert.ok(store.lookup(id));
  for (let i = 0; i < 20; i++) store.create('c', 'admin');
  assert.equal(store.size, 3);
});

function readJson(file: string): { version: number; sessions: Record<string, unknown> } {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

test('persistence: 0600 file, digests only, survives a new store instance', () => {
  const file = freshFile();
  const c = clock();
  const first = createSessionStore({ file, now: c.now });
  const a = first.create('token:abc', 'admin');
  const b = first.create('device:phone', 'read');

  if (process.platform !== 'win32') assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const text = fs.readFileSync(file, 'utf8');
  for (const id of [a.id, b.id]) {
    assert.ok(!text.includes(id), 'the raw session id never reaches the disk');
    const digestHex = createHash('sha256').update(id, 'utf8').digest('hex');
    assert.ok(text.includes(digestHex), 'records are keyed by the id digest');
  }
  const json = readJson(file);
  assert.equal(json.version, 1);
  assert.equal(Object.keys(json.sessions).length, 2);
  for (const key of Object.keys(json.sessions)) assert.match(key, /^[0-9a-f]{64}$/);

  c.advance(HOUR);
  const second = createSessionStore({ file, now: c.now });
  assert.equal(second.size, 2);
  assert.deepEqual(second.lookup(a.id), {
    credential: 'token:abc',
    scope: 'admin',
    createdAt: c.now() - HOUR,
    lastSeenAt: c.now(),
  });
  assert.equal(second.lookup(b.id)?.scope, 'read');
  // No temp files left behind by the atomic writes.
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.tmp')), []);
});

test('persistence: revocations and deletions are written at once', () => {
  const file = freshFile();
  const store = createSessionStore({ file });
  const a = store.create('token:old', 'admin').id;
  const b = store.create('token:new', 'admin').id;
  const d = store.create('token:new', 'admin').id;
  store.revokeCredential('token:old');
  store.delete(d);
  const reloaded = createSessionStore({ file });
  assert.equal(reloaded.size, 1);
  assert.equal(reloaded.lookup(a), undefined);
  assert.equal(reloaded.lookup(d), undefined);
  assert.ok(reloaded.lookup(b));
});

test('persistence: expired records are dropped on load and not written back', () => {
  const file = freshFile();
  const c = clock();
  const store = createSessionStore({ file, now: c.now, idleMs: HOUR });
  const old = store.create('c', 'admin').id;
  c.advance(HOUR / 2);
  const fresh = store.create('c', 'admin').id;
  c.advance(HOUR / 2 + 1);
  const reloaded = createSessionStore({ file, now: c.now, idleMs: HOUR });
  assert.equal(reloaded.size, 1);
  assert.equal(reloaded.lookup(old), undefined);
  assert.ok(reloaded.lookup(fresh));
  reloaded.flush();
  assert.equal(Object.keys(readJson(file).sessions).length, 1);
});

test('persistence: lookups refresh lastSeenAt on disk at flush', () => {
  const file = freshFile();
  const c = clock();
  const store = createSessionStore({ file, now: c.now, idleMs: HOUR });
  const { id } = store.create('c', 'admin');
  c.advance(HOUR - 1000);
  assert.ok(store.lookup(id));
  store.flush();
  c.advance(HOUR - 1000); // idle since creation would have expired; since the lookup it has not
  const reloaded = createSessionStore({ file, now: c.now, idleMs: HOUR });
  assert.ok(reloaded.lookup(id));
});

test('a corrupt or odd sessions file costs a fresh login, never a crash', () => {
  const contents = [
    '',
    '{',
    'not json at all',
    'null',
    '[]',
    '42',
    '{"sessions": null}',
    '{"sessions": "abc"}',
    '{"sessions": {"k": null}}',
    '{"sessions": {"k": {"credential": "c"}}}',
    '\u0000\u0001\u0002',
  ];
  for (const content of contents) {
    const file = freshFile();
    fs.writeFileSync(file, content, { mode: 0o600 });
    const store = createSessionStore({ file });
    assert.equal(store.size, 0, JSON.stringify(content));
    const { id } = store.create('c', 'admin');
    assert.ok(createSessionStore({ file }).lookup(id), 'the file is rewritten cleanly');
  }
  // A missing file and a missing directory are fine too.
  assert.equal(createSessionStore({ file: path.join(dir, 'missing', 'sessions.json') }).size, 0);
});

test('a memory-only store writes nothing', () => {
  const before = fs.readdirSync(dir).length;
  const store = createSessionStore();
  store.create('c', 'admin');
  store.flush();
  assert.equal(fs.readdirSync(dir).length, before);
});

test('touch (by key) counts as use; an expired session is not revived', () => {
  const c = clock();
  const store = createSessionStore({ now: c.now, idleMs: HOUR, maxMs: DAY });
  const { id } = store.create('token:a', 'admin');
  const key = store.keyOf(id);
  c.advance(HOUR - 1);
  assert.equal(store.touch(key), true);
  c.advance(HOUR - 1);
  assert.ok(store.lookup(id), 'alive: touched within idleMs');
  c.advance(HOUR);
  assert.equal(store.touch(key), false);
  assert.equal(store.lookup(id), undefined);
  assert.equal(store.touch('0'.repeat(64)), false, 'unknown key');
});
