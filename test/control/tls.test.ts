// TLS on the gateway and pinning in the SDK: a self-signed certificate is accepted only
// through a matching pin (public key or whole certificate), a mismatch fails with
// TLS_PIN_MISMATCH, a renewal with the same key keeps SPKI pins valid, and the HMAC proof is
// bound to the TLS connection (a proof made on another connection fails).
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { connect, type ControlError } from '../../src/client/index.js';
import { EXPORTER_LABEL, EXPORTER_LENGTH, proofMessage } from '../../src/control/wire.js';
import { loadGatewayTls, tlsChoice } from '../../src/tls/gateway-cert.js';
import { createCertificate } from '../../src/tls/x509.js';
import { tempDir } from '../helpers/servers.js';
import { challengeOf, rawPeer, startControlGateway, TOKEN, type ControlGateway } from './helpers.js';

const first = createCertificate({ commonName: 'desk', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
const spkiPin = `sha256/${first.spkiSha256}`;

describe('TLS and pinning', () => {
  let g: ControlGateway;
  before(async () => {
    g = await startControlGateway({ tls: { cert: first.certPem, key: first.keyPem } });
  });
  after(() => g.close());

  test('an SPKI pin and a certificate pin both accept the self-signed certificate', async () => {
    assert.match(g.url, /^https:/);
    for (const pin of [spkiPin, first.fingerprint256, first.fingerprint256.replace(/:/g, '').toLowerCase()]) {
      const c = await connect({ url: g.url, token: TOKEN, pin, env: {} });
      assert.deepEqual(await c.request('health'), { status: 'ok' });
      await c.close();
    }
  });

  test('a pin that does not match fails with TLS_PIN_MISMATCH; no pin fails on the untrusted certificate', async () => {
    const other = createCertificate({ commonName: 'x', dnsNames: ['localhost'] });
    for (const pin of [`sha256/${other.spkiSha256}`, other.fingerprint256]) {
      await assert.rejects(connect({ url: g.url, token: TOKEN, pin, env: {}, reconnect: false }), (e: ControlError) => e.code === 'TLS_PIN_MISMATCH');
    }
    await assert.rejects(connect({ url: g.url, token: TOKEN, env: {} }), (e: ControlError) => e.code === 'CONTROL_CONNECT_FAILED');
    await assert.rejects(connect({ url: g.url, token: TOKEN, pin: 'nonsense', env: {} }), (e: ControlError) => e.code === 'TLS_PIN_INVALID');
  });

  test('the HMAC proof is bound to this TLS connection: one made for another connection fails', async () => {
    const opts = { rejectUnauthorized: false };
    const a = await rawPeer(g.wsUrl.replace('ws:', 'wss:'), opts);
    const b = await rawPeer(g.wsUrl.replace('ws:', 'wss:'), opts);
    const cb = await challengeOf(b);
    await challengeOf(a);
    assert.deepEqual(cb.bindings, ['tls-exporter']);
    // A relaying attacker holds connection B's challenge but only its own connection A's exporter.
    const socketOf = (p: typeof a) => (p.ws as unknown as { _socket: TLSSocket })._socket;
    const exporterA = socketOf(a).exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0)).toString('base64url');
    const key = createHash('sha256').update(TOKEN).digest();
    const relayed = createHmac('sha256', key).update(proofMessage({ nonce: cb.nonce, ts: cb.ts, binding: 'tls-exporter', exporter: exporterA, deviceName: '' })).digest('base64url');
    b.send({ type: 'req', id: '1', method: 'connect', params: { nonce: cb.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'hmac', proof: relayed, binding: 'tls-exporter' } } });
    assert.equal((await b.closed).code, 4001);
    // And a proof without the binding is refused on a TLS connection.
    const c = await rawPeer(g.wsUrl.replace('ws:', 'wss:'), opts);
    const cc = await challengeOf(c);
    const unbound = createHmac('sha256', key).update(proofMessage({ nonce: cc.nonce, ts: cc.ts, binding: 'none', exporter: '', deviceName: '' })).digest('base64url');
    c.send({ type: 'req', id: '1', method: 'connect', params: { nonce: cc.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'hmac', proof: unbound, binding: 'none' } } });
    assert.equal(((await c.next())['error'] as { code: string }).code, 'CONTROL_BINDING_MISMATCH');
    a.ws.close();
  });
});

describe('gateway certificate: made once, renewed with the same key', () => {
  const tmp = tempDir('porthole-tls-');
  after(() => tmp.cleanup());

  test('self-signed: created 0600, reused, renewed near expiry keeping the SPKI pin', async () => {
    const home = `${tmp.dir}/home`;
    mkdirSync(home, { mode: 0o700 });
    const made = loadGatewayTls(tlsChoice({ tls: 'self-signed' }), home, '127.0.0.1')!;
    assert.equal(made.action, 'created');
    assert.equal(statSync(made.keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(`${home}/tls`).mode & 0o777, 0o700);
    const again = loadGatewayTls(tlsChoice({ tls: 'self-signed' }), home, '127.0.0.1')!;
    assert.equal(again.action, 'reused');
    assert.equal(again.pins.fingerprint256, made.pins.fingerprint256);
    // 380 days later the certificate is within 30 days of expiry: renewed, same key.
    const later = loadGatewayTls(tlsChoice({ tls: 'self-signed' }), home, '127.0.0.1', new Date(Date.now() + 380 * 86_400_000))!;
    assert.equal(later.action, 'renewed');
    assert.equal(later.pins.spkiSha256, made.pins.spkiSha256);
    assert.notEqual(later.pins.fingerprint256, made.pins.fingerprint256);

    // Clients: the SPKI pin accepts the renewed certificate, the old certificate pin does not.
    const g = await startControlGateway({ tls: { cert: later.cert, key: later.key } });
    try {
      const c = await connect({ url: g.url, token: TOKEN, pin: `sha256/${made.pins.spkiSha256}`, env: {} });
      await c.close();
      await assert.rejects(connect({ url: g.url, token: TOKEN, pin: made.pins.fingerprint256, env: {} }), (e: ControlError) => e.code === 'TLS_PIN_MISMATCH');
    } finally {
      await g.close();
    }

    chmodSync(made.keyFile, 0o644);
    assert.throws(() => loadGatewayTls(tlsChoice({ tls: 'self-signed' }), home, '127.0.0.1'), { code: 'SECRET_FILE_INSECURE' });
  });

  test('flag combinations', () => {
    assert.deepEqual(tlsChoice({}), { mode: 'off' });
    assert.throws(() => tlsChoice({ tlsCert: 'a' }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => tlsChoice({ tls: 'self-signed', tlsCert: 'a', tlsKey: 'b' }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => tlsChoice({ tls: 'on' }), { code: 'INVALID_ARGUMENT' });
  });
});
