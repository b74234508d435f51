// The relay in-process (library API): registration limits per source address, the
// registration handshake's refusals, and settings a relay must refuse to start with.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { rawPublicKey } from '../../src/protocol/handshake.js';
import { type RelayLimits, startRelay, type Relay } from '../../src/relay/server.js';
import { createCertificate } from '../../src/tls/x509.js';
import { connectOnce } from '../../src/tunnel/client.js';
import { captureHello } from '../helpers/client-hello.js';

const DOMAIN = 'tunnel.example.test';
const ca = createCertificate({ commonName: 'test CA', isCA: true });
const cert = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN], issuer: ca });
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'porthole-relay-'));
  dirs.push(d);
  return d;
};
let relay: Relay;

function identity() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: rawPublicKey(publicKey) };
}

function attempt(subdomain: string, secret = 'a-registration-secret-0123') {
  return connectOnce({
    relay: `${DOMAIN}:${relay.port}`,
    connectAddress: '127.0.0.1',
    subdomain,
    ca: ca.certPem,
    identity: identity(),
    secret,
    onStream: (s) => s.destroy(),
  });
}

/** A loopback relay of its own store with these limits. */
function relayWith(limits: RelayLimits): Promise<Relay> {
  return startRelay({
    domain: DOMAIN,
    host: '127.0.0.1',
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    registrationSecret: 'a-registration-secret-0123',
    storeDir: tmp(),
    limits,
  });
}

/** A raw desk on `r` (the mux session; no gateway behind it): visitors' streams go to `onStream`. */
async function deskOn(r: Relay, subdomain: string, onStream: (s: Duplex) => void): Promise<{ close(): void }> {
  const link = (await connectOnce({
    relay: `${DOMAIN}:${r.port}`,
    connectAddress: '127.0.0.1',
    subdomain,
    ca: ca.certPem,
    identity: identity(),
    secret: 'a-registration-secret-0123',
    onStream: () => {},
  })) as { session: EventEmitter & { close(): void } };
  link.session.on('stream', onStream);
  return link.session;
}

before(async () => {
  relay = await relayWith({ registrationsPerMinute: 3 });
});
after(async () => {
  await relay.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('registrations per source address are limited; refusals carry stable codes', async () => {
  const first = (await attempt('alpha')) as { session: { close(): void }; name: string };
  assert.equal(first.name, 'alpha');
  first.session.close();
  await assert.rejects(attempt('beta', 'the-wrong-secret-0123456'), { code: 'REGISTRATION_DENIED' });
  await assert.rejects(attempt('www'), { code: 'SUBDOMAIN_INVALID' });
  // The fourth attempt within the minute is refused before any proof is checked.
  await assert.rejects(attempt('gamma'), { code: 'RATE_LIMITED' });
});

test('a relay off loopback without a secret, or with the dev secret, refuses to start', async () => {
  const base = { domain: DOMAIN, port: 0, certPem: cert.certPem, keyPem: cert.keyPem, storeDir: tmp() };
  await assert.rejects(startRelay({ ...base, host: '0.0.0.0', registrationSecret: undefined }), { code: 'REGISTRATION_DENIED' });
  await assert.rejects(startRelay({ ...base, host: '0.0.0.0', registrationSecret: 'porthole-dev-registration-secret' }), {
    code: 'REGISTRATION_DENIED',
  });
  await assert.rejects(startRelay({ ...base, host: '127.0.0.1', registrationSecret: undefined, production: true }), {
    code: 'REGISTRATION_DENIED',
  });
  await assert.rejects(startRelay({ ...base, host: '127.0.0.1', registrationSecret: 'short' }), { code: 'REGISTRATION_DENIED' });
});

test('an idle visitor connection is closed; the desk link stays up', async () => {
  const r = await relayWith({ visitorIdleMs: 300 });
  try {
    const streams: Duplex[] = [];
    const session = await deskOn(r, 'idler', (s) => {
      streams.push(s);
      s.resume();
      s.on('error', () => {});
    });
    const { connect } = await import('node:tls');
    const visitor = connect({ host: '127.0.0.1', port: r.port, servername: `idler.${DOMAIN}`, ca: ca.certPem });
    visitor.on('error', () => {});
    const t0 = Date.now();
    await new Promise((resolve) => visitor.once('close', resolve));
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(streams.length, 1, 'the visitor reached the desk as one stream');
    assert.equal(r.desks().length, 1, 'the desk is still online');
    session.close();
  } finally {
    await r.close();
  }
});

test('visitors count against a desk until their connection closes, and one source cannot take them all', { timeout: 20_000 }, async () => {
  const r = await relayWith({ maxStreamsPerDesk: 3, maxStreamsPerAddress: 2 });
  const net = await import('node:net');
  const visitors: import('node:net').Socket[] = [];
  try {
    const streams: Duplex[] = [];
    const session = await deskOn(r, 'counted', (s) => {
      streams.push(s);
      s.on('error', () => {});
      s.resume();
    });
    const hello = await captureHello({ servername: `counted.${DOMAIN}` });
    /** A visitor that sends its ClientHello and reads nothing; resolves with whether it reached the desk. */
    const visitor = async (localAddress: string): Promise<import('node:net').Socket> => {
      const v = net.connect({ host: '127.0.0.1', port: r.port, localAddress });
      v.on('error', () => {});
      v.pause();
      visitors.push(v);
      await new Promise((resolve) => v.once('connect', resolve));
      v.write(hello);
      return v;
    };
    const reached = async (n: number): Promise<void> => {
      const end = Date.now() + 5_000;
      while (streams.length < n && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    };
    const refused = (v: import('node:net').Socket): Promise<void> => new Promise((resolve) => (v.destroyed ? resolve() : v.once('close', () => resolve())));

    // Two from one address reach the desk; its third is refused; another address still gets in.
    await visitor('127.0.0.1');
    await visitor('127.0.0.1');
    await reached(2);
    assert.equal(streams.length, 2);
    const third = await visitor('127.0.0.1');
    third.resume(); // to see the alert and the close
    await refused(third);
    assert.equal(streams.length, 2, "one address's third visitor reached the desk");
    await visitor('127.0.0.2');
    await reached(3);
    assert.equal(streams.length, 3);

    // The desk finishes and resets the first stream while its visitor reads nothing: the relay
    // still holds that answer for it, so the visitor still counts (the desk is full at 3).
    const first = streams[0]!;
    first.end(Buffer.alloc(8 * 1024 * 1024, 0x61), () => first.destroy());
    await new Promise((res) => setTimeout(res, 300));
    const fourth = await visitor('127.0.0.3');
    fourth.resume();
    await refused(fourth);
    assert.equal(streams.length, 3, 'a visitor past the desk limit reached it while a finished answer was still held');
    // Once that visitor's connection closes, its place is free.
    visitors[0]!.destroy();
    await new Promise((res) => setTimeout(res, 200));
    await visitor('127.0.0.3');
    await reached(4);
    assert.equal(streams.length, 4);
    session.close();
  } finally {
    for (const v of visitors) v.destroy();
    await r.close();
  }
});
