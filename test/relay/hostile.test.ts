// Hostile peers on both sides of the relay (review of 2026-11-23): refused connections must
// not leak file descriptors (visitors that sent more than the ClientHello, plain-HTTP
// clients with a body), a peer that stops mid-TLS-handshake is closed within the ClientHello
// deadline, and a relay that sends ill-typed handshake messages or visitor metadata costs the
// desk one connection attempt or one stream — never the gateway.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { encodeMessage, type HandshakeMessage, rawPublicKey, TUNNEL_ALPN } from '../../src/protocol/handshake.js';
import { startRelay, type Relay } from '../../src/relay/server.js';
import { createCertificate } from '../../src/tls/x509.js';
import { connectOnce, parseVisitorMeta, registeredUrlProblem } from '../../src/tunnel/client.js';

const DOMAIN = 'tunnel.example.test';
const ca = createCertificate({ commonName: 'test CA', isCA: true });
const cert = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN, `*.${DOMAIN}`], issuer: ca });
const dir = mkdtempSync(join(tmpdir(), 'porthole-relay-hostile-'));
const HANDSHAKE_DEADLINE_MS = 600;
let relay: Relay;
let terminate: Relay;

before(async () => {
  const base = { domain: DOMAIN, host: '127.0.0.1', port: 0, certPem: cert.certPem, keyPem: cert.keyPem, registrationSecret: 'a-registration-secret-0123' };
  relay = await startRelay({ ...base, storeDir: join(dir, 'a'), http: { host: '127.0.0.1', port: 0 }, limits: { clientHelloTimeoutMs: HANDSHAKE_DEADLINE_MS } });
  terminate = await startRelay({ ...base, mode: 'terminate', storeDir: join(dir, 'b'), limits: { clientHelloTimeoutMs: HANDSHAKE_DEADLINE_MS } });
});
after(async () => {
  await relay.close();
  await terminate.close();
  rmSync(dir, { recursive: true, force: true });
});

/** This process's open file descriptors (the relay runs in it). */
function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The first flight of a real TLS client for `servername` (and ALPN), captured on a throwaway server. */
async function clientHello(servername: string, alpn?: string[]): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) =>
      s.once('data', (d: Buffer) => {
        s.destroy();
        resolve(d);
      }),
    ),
  );
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername, ...(alpn ? { ALPNProtocols: alpn } : {}) });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

/** Resolves when `s` closes, or with false after `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function settle(until: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!until() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

test('refused visitors (unknown name, bytes after the ClientHello) leave no descriptor behind', async () => {
  const hello = await clientHello(`nobody.${DOMAIN}`);
  const junk = Buffer.alloc(64 * 1024, 0x41);
  const before = openFds();
  const n = 40;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const s = net.connect(relay.port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(Buffer.concat([hello, junk]));
      // Wait for the relay's alert, then leave.
      await new Promise((r) => s.once('data', r));
      s.end();
      await closedWithin(s, 2000);
      s.destroy();
    }),
  );
  await settle(() => openFds() <= before + 2, 3000);
  assert.ok(openFds() <= before + 2, `${openFds() - before} descriptors still open after ${n} refused visitors`);
});

test('plain-HTTP clients answered with a body still unread leave no descriptor behind', async () => {
  const before = openFds();
  const n = 40;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const s = net.connect(relay.httpPort!, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(`POST /x HTTP/1.1\r\nHost: ${DOMAIN}\r\nContent-Length: 65536\r\n\r\n${'b'.repeat(65536)}`);
      await new Promise((r) => s.once('data', r));
      s.end();
      await closedWithin(s, 2000);
      s.destroy();
    }),
  );
  await settle(() => openFds() <= before + 2, 3000);
  assert.ok(openFds() <= before + 2, `${openFds() - before} descriptors still open after ${n} redirected clients`);
});

test('a peer that stops mid-handshake is closed within the ClientHello deadline (desk path and terminate mode)', async () => {
  const cases: [Relay, Buffer][] = [
    [relay, await clientHello(DOMAIN, [TUNNEL_ALPN])],
    [terminate, await clientHello(`visitor.${DOMAIN}`, ['http/1.1'])],
  ];
  for (const [r, hello] of cases) {
    const s = net.connect(r.port, '127.0.0.1');
    s.on('error', () => {});
    s.on('data', () => {});
    await new Promise((res) => s.once('connect', res));
    s.write(hello); // …and never the rest of the handshake
    const t0 = Date.now();
    assert.equal(await closedWithin(s, HANDSHAKE_DEADLINE_MS + 3000), true, 'the relay held a stalled handshake');
    assert.ok(Date.now() - t0 >= HANDSHAKE_DEADLINE_MS - 100);
  }
});

/** A "relay" with the right certificate that answers the desk's TLS with `messages`. */
async function hostileRelay(messages: HandshakeMessage[] | Buffer[]): Promise<{ port: number; close(): void }> {
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem, ALPNProtocols: [TUNNEL_ALPN] }, (s) => {
    s.on('error', () => {});
    for (const m of messages) s.write(Buffer.isBuffer(m) ? m : encodeMessage(m));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

function desk(port: number) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return connectOnce({
    relay: `${DOMAIN}:${port}`,
    connectAddress: '127.0.0.1',
    ca: ca.certPem,
    identity: { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: rawPublicKey(publicKey) },
    secret: 'a-registration-secret-0123',
    onStream: (s) => s.destroy(),
    connectTimeoutMs: 5000,
  });
}

/** A raw handshake frame (4-byte length + JSON), for messages the types would not allow. */
function frame(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([len, json]);
}

test('ill-typed messages from a relay fail the connection attempt (TUNNEL_PROTOCOL_ERROR), nothing throws', async () => {
  const nonce = Buffer.alloc(32, 1).toString('base64url');
  for (const bad of [
    [frame({ type: 'challenge', version: 1, relay: 5, nonce })],
    [frame({ type: 'challenge', version: 1, relay: DOMAIN, nonce: null })],
    [frame({ type: 'error', code: { nested: true }, message: 'x' })],
    [frame({ type: 'surprise' })],
  ]) {
    const r = await hostileRelay(bad);
    try {
      await assert.rejects(desk(r.port), { code: 'TUNNEL_PROTOCOL_ERROR' });
    } finally {
      r.close();
    }
  }
});

test('a registered URL that is not https://<name>.<relay> is refused: its name would join the Host allowlist', () => {
  assert.equal(registeredUrlProblem({ name: 'desk', url: `https://desk.${DOMAIN}:8443` }, DOMAIN), undefined);
  assert.equal(registeredUrlProblem({ name: 'desk', url: `https://desk.${DOMAIN}` }, DOMAIN.toUpperCase()), undefined);
  for (const url of ['https://evil.example', `http://desk.${DOMAIN}`, `https://other.${DOMAIN}`, `https://u:p@desk.${DOMAIN}`, `https://desk.${DOMAIN}/path`, 'not a url']) {
    assert.notEqual(registeredUrlProblem({ name: 'desk', url }, DOMAIN), undefined, url);
  }
});

test("a relay's visitor metadata is checked field by field", () => {
  assert.deepEqual(parseVisitorMeta(Buffer.from('{"v":1,"remote":"203.0.113.9","remotePort":4000,"tls":true}')), {
    v: 1,
    remote: '203.0.113.9',
    remotePort: 4000,
    tls: true,
  });
  for (const bad of ['null', '5', '"x"', '{}', '{"remote":5,"tls":true}', '{"remote":"a","tls":"yes"}', '{"remote":"a","tls":true,"remotePort":-1}', '{', `{"remote":"${'a'.repeat(200)}","tls":true}`]) {
    assert.equal(parseVisitorMeta(Buffer.from(bad)), undefined, bad);
  }
});
