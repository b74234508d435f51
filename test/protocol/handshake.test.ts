// The handshake's proofs: a signature and a secret HMAC that verify only for the exact
// relay, subdomain, nonce and TLS exporter they were made for.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  type Challenge,
  checkSecretProof,
  encodeMessage,
  MAX_HANDSHAKE_MESSAGE,
  rawPublicKey,
  readMessage,
  secretProof,
  signTranscript,
  transcript,
  verifyTranscript,
} from '../../src/protocol/handshake.js';

function keys() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), pub: rawPublicKey(publicKey) };
}

test('a signature verifies only for its own transcript', () => {
  const k = keys();
  const nonce = randomBytes(32).toString('base64url');
  const exporter = randomBytes(32);
  const t = transcript('tunnel.example.test', 'desk', nonce, exporter);
  const sig = signTranscript(k.pem, t);
  assert.equal(verifyTranscript(k.pub, t, sig), true);
  const others = [
    transcript('evil.example.test', 'desk', nonce, exporter), // another relay
    transcript('tunnel.example.test', 'other', nonce, exporter), // another name
    transcript('tunnel.example.test', null, nonce, exporter),
    transcript('tunnel.example.test', 'desk', randomBytes(32).toString('base64url'), exporter), // replayed nonce
    transcript('tunnel.example.test', 'desk', nonce, randomBytes(32)), // another TLS connection
  ];
  for (const o of others) assert.equal(verifyTranscript(k.pub, o, sig), false);
  assert.equal(verifyTranscript(keys().pub, t, sig), false, 'another key');
  assert.equal(verifyTranscript(k.pub, t, 'AAAA'), false, 'short signature');
  assert.equal(verifyTranscript('not-a-key', t, sig), false);
});

test('relay names compare case-insensitively in the transcript', () => {
  const e = randomBytes(32);
  assert.deepEqual(transcript('Tunnel.Example.Test', 'd', 'AA', e), transcript('tunnel.example.test', 'd', 'AA', e));
});

test('secret proofs: right secret passes, wrong secret or transcript fails', () => {
  const t = transcript('r', 'd', randomBytes(32).toString('base64url'), randomBytes(32));
  const proof = secretProof('s3cret-registration', t);
  assert.equal(checkSecretProof('s3cret-registration', t, proof), true);
  assert.equal(checkSecretProof('s3cret-registratioN', t, proof), false);
  assert.equal(checkSecretProof('s3cret-registration', Buffer.concat([t, Buffer.from([1])]), proof), false);
  assert.equal(checkSecretProof('s3cret-registration', t, proof.slice(0, 10)), false);
});

test('messages: length-prefixed JSON, read back across chunk boundaries', () => {
  const m: Challenge = { type: 'challenge', version: 1, relay: 'r', nonce: 'n' };
  const wire = Buffer.concat([encodeMessage(m), Buffer.from('rest')]);
  for (let cut = 0; cut < wire.length - 4; cut++) {
    const r = readMessage(wire.subarray(0, cut));
    assert.equal(r.status, 'incomplete', `cut ${cut}`);
  }
  const r = readMessage(wire);
  assert.equal(r.status, 'message');
  if (r.status === 'message') {
    assert.deepEqual(r.message, m);
    assert.equal(r.rest.toString(), 'rest');
  }
});

test('messages: oversize, non-JSON and typeless input are invalid', () => {
  const big = Buffer.alloc(4);
  big.writeUInt32BE(MAX_HANDSHAKE_MESSAGE + 1, 0);
  assert.equal(readMessage(big).status, 'invalid');
  const junk = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{x]')]);
  assert.equal(readMessage(junk).status, 'invalid');
  const typeless = encodeMessage({ nope: 1 } as never);
  assert.equal(readMessage(typeless).status, 'invalid');
});
