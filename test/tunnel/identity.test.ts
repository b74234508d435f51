// The desk key: created once (0600 in a 0700 dir), stable afterwards, refused if exposed.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOrCreateIdentity } from '../../src/tunnel/identity.js';
import { signTranscript, transcript, verifyTranscript } from '../../src/protocol/handshake.js';

test('created once, 0600/0700, stable across loads, and it signs', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'porthole-id-')), 'identity');
  t.after(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
  const a = loadOrCreateIdentity(dir);
  assert.match(a.publicKey, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'desk-ed25519.pem')).mode & 0o777, 0o600);
  const b = loadOrCreateIdentity(dir);
  assert.equal(b.publicKey, a.publicKey);
  const tr = transcript('relay', null, 'AAAA', Buffer.alloc(32));
  assert.equal(verifyTranscript(a.publicKey, tr, signTranscript(b.privateKeyPem, tr)), true);
});

test('a group-readable key is refused', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'porthole-id-')), 'identity');
  t.after(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
  loadOrCreateIdentity(dir);
  chmodSync(join(dir, 'desk-ed25519.pem'), 0o640);
  assert.throws(() => loadOrCreateIdentity(dir), { code: 'SECRET_FILE_INSECURE' });
});
