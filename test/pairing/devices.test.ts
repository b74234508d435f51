// The devices store (src/pairing/devices.ts): digests only on disk (0600), tokens by digest,
// pending/revoked/expired states, Ed25519 signatures, restart survival.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createDeviceStore, parseDevicePublicKey } from '../../src/pairing/devices.js';
import { clock } from '../helpers/clock.js';

const dir = mkdtempSync(join(tmpdir(), 'porthole-devices-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DAY = 24 * 3600_000;

test('tokens: phd_ + 256 bits, stored only as a digest, file 0600', () => {
  const file = join(dir, 'a.json');
  const store = createDeviceStore({ file });
  const { device, token } = store.create({ name: 'phone', kind: 'sdk', scope: 'read', expiresAt: null, pending: false, withToken: true });
  assert.match(token!, /^phd_[A-Za-z0-9_-]{43}$/);
  const text = readFileSync(file, 'utf8');
  assert.ok(!text.includes(token!), 'the token is not on disk');
  assert.ok(!text.includes(token!.slice(4)), 'not even its body');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(store.checkToken(token!).status, 'active');
  assert.equal(store.checkToken(`${token!.slice(0, -1)}x`).status, 'unknown');
  assert.equal(store.checkCredential(`device:${device.id}`).status, 'active');
  assert.ok(store.get(device.id)!.lastUsedAt !== null, 'last use recorded');
});

test('pending until approved; revoked and expired are told apart from unknown', () => {
  const c = clock();
  const store = createDeviceStore({ now: c.now });
  const p = store.create({ name: 'p', kind: 'sdk', scope: 'admin', expiresAt: c.now() + DAY, pending: true, withToken: true });
  assert.equal(store.checkToken(p.token!).status, 'pending');
  assert.ok(store.isCredentialValid(`device:${p.device.id}`), 'a pending device keeps its sessions');
  store.approve(p.device.id);
  assert.equal(store.checkToken(p.token!).status, 'active');
  c.advance(DAY);
  assert.equal(store.checkToken(p.token!).status, 'expired');
  assert.equal(store.isCredentialValid(`device:${p.device.id}`), false);
  const r = store.create({ name: 'r', kind: 'sdk', scope: 'admin', expiresAt: null, pending: false, withToken: true });
  store.revoke(r.device.id);
  assert.equal(store.checkToken(r.token!).status, 'revoked');
  assert.equal(store.isCredentialValid(`device:${r.device.id}`), false);
  assert.deepEqual(store.list().map((d) => d.id), [p.device.id], 'revoked devices are not listed');
  assert.throws(() => store.revoke(r.device.id), { code: 'DEVICE_NOT_FOUND' });
  assert.throws(() => store.approve('nope'), { code: 'DEVICE_NOT_FOUND' });
});

test('a restart keeps devices, their state and revocations', () => {
  const file = join(dir, 'b.json');
  const one = createDeviceStore({ file });
  const a = one.create({ name: 'a', kind: 'sdk', scope: 'read', expiresAt: null, pending: false, withToken: true });
  const b = one.create({ name: 'b', kind: 'sdk', scope: 'admin', expiresAt: null, pending: false, withToken: true });
  one.revoke(b.device.id);
  const two = createDeviceStore({ file });
  assert.equal(two.checkToken(a.token!).status, 'active');
  assert.equal(two.checkToken(b.token!).status, 'revoked');
});

test('an insecure or corrupt devices.json refuses to load', () => {
  const file = join(dir, 'c.json');
  writeFileSync(file, '{}', { mode: 0o644 });
  assert.throws(() => createDeviceStore({ file }), { code: 'SECRET_FILE_INSECURE' });
  writeFileSync(file, 'not json');
  chmodSync(file, 0o600);
  assert.throws(() => createDeviceStore({ file }), { code: 'SECRET_FILE_UNREADABLE' });
});

test('Ed25519 keys: only Ed25519 SPKI accepted; signatures verified by the registered key', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' }).toString('base64url');
  assert.equal(parseDevicePublicKey(spki).spki, spki);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64url');
  assert.throws(() => parseDevicePublicKey(ec), { code: 'BAD_REQUEST' });
  assert.throws(() => parseDevicePublicKey('!!'), { code: 'BAD_REQUEST' });
  const store = createDeviceStore();
  const { device } = store.create({ name: 'k', kind: 'sdk', scope: 'read', expiresAt: null, pending: false, withToken: true, publicKey: spki });
  const msg = Buffer.from('challenge');
  assert.equal(store.verifySignature(device.id, msg, sign(null, msg, privateKey)).status, 'active');
  assert.equal(store.verifySignature(device.id, Buffer.from('other'), sign(null, msg, privateKey)).status, 'unknown');
  const other = generateKeyPairSync('ed25519').privateKey;
  assert.equal(store.verifySignature(device.id, msg, sign(null, msg, other)).status, 'unknown');
});
