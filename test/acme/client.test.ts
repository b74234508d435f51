// The ACME client against a real CA (pebble, with pebble-challtestsrv as its DNS), plus unit
// checks of its JWS and CSR. pebble validates http-01 by fetching
// http://<name>:<httpPort>/.well-known/acme-challenge/<token> from a tiny node:http server
// here that answers from the AcmeChallengeStore the client fills.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import https from 'node:https';
import tls from 'node:tls';
import { type AcmeChallengeStore, type AcmeOptions, generateAcmeKeyPem, obtainCertificate } from '../../src/acme/client.js';
import { createCsr, csrPem } from '../../src/acme/csr.js';
import { jwkThumbprint, keyAuthorization, loadAccountKey, signJws } from '../../src/acme/jws.js';
import { isPortholeError } from '../../src/errors.js';
import { createCertificate } from '../../src/tls/x509.js';
import { type Pebble, pebbleProblem, startPebble } from '../helpers/pebble.js';
import { skipUnless, skipUnlessExecutable } from '../helpers/peers.js';

const NAME = 'desk1.tunnel.example.test';
const PREFIX = '/.well-known/acme-challenge/';

/** A store that remembers what it was asked, to check the client cleans up after itself. */
class RecordingStore implements AcmeChallengeStore {
  readonly live = new Map<string, string>();
  readonly setTokens: string[] = [];
  set(token: string, keyAuthorization: string): void {
    this.setTokens.push(token);
    this.live.set(token, keyAuthorization);
  }
  delete(token: string): void {
    this.live.delete(token);
  }
}

interface ChallengeServer {
  port: number;
  store: RecordingStore;
  /** When true, answers a well-formed but wrong key authorization. */
  lie: boolean;
  /** Tokens pebble asked for. */
  requests: string[];
  close(): Promise<void>;
}

async function startChallengeServer(): Promise<ChallengeServer> {
  const state = { store: new RecordingStore(), lie: false, requests: [] as string[] };
  const server = http.createServer((req, res) => {
    const token = req.url?.startsWith(PREFIX) ? req.url.slice(PREFIX.length) : undefined;
    const answer = token === undefined ? undefined : state.store.live.get(token);
    if (token !== undefined) state.requests.push(token);
    if (answer === undefined) {
      res.writeHead(404).end();
      return;
    }
    const body = state.lie ? `${token}.${'A'.repeat(43)}` : answer;
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(state, {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

function splitChain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b));
}

const skipPebble = skipUnless('pebble', pebbleProblem());

describe('obtainCertificate against a real pebble', { skip: skipPebble }, () => {
  let challenge: ChallengeServer;
  let pebble: Pebble;
  before(async () => {
    challenge = await startChallengeServer();
    pebble = await startPebble({ httpPort: challenge.port });
  });
  after(async () => {
    await pebble?.stop();
    await challenge?.close();
  });
  const options = (extra: Partial<AcmeOptions> = {}): AcmeOptions => ({
    directoryUrl: pebble.directoryUrl,
    ca: pebble.caPem,
    accountKeyPem: generateAcmeKeyPem(),
    challenges: challenge.store,
    timeoutMs: 60_000,
    ...extra,
  });

  test('issues a certificate whose chain a TLS client trusting only the root accepts', async () => {
    challenge.lie = false;
    const certKeyPem = generateAcmeKeyPem();
    const notes: string[] = [];
    const issued = await obtainCertificate(
      options({ email: 'ops@example.test', log: (m) => notes.push(m) }),
      NAME,
      certKeyPem,
    );
    assert.ok(issued.notBefore.getTime() <= Date.now() + 60_000 && issued.notAfter.getTime() > Date.now());
    const chain = splitChain(issued.certPem);
    assert.ok(chain.length >= 2, 'leaf and at least one intermediate');
    const leaf = chain[0]!;
    assert.equal(leaf.checkHost(NAME), NAME);
    assert.equal(leaf.checkHost('desk2.tunnel.example.test'), undefined);
    assert.ok(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(certKeyPem).export({ type: 'spki', format: 'der' })));
    const root = new X509Certificate(await pebble.rootPem());
    const top = chain[chain.length - 1]!;
    assert.ok(top.checkIssued(root) && top.verify(root.publicKey), 'the chain ends at pebble root');
    for (let i = 0; i + 1 < chain.length; i++) assert.ok(chain[i]!.verify(chain[i + 1]!.publicKey));

    // A TLS server with the issued chain and key, a client trusting only pebble's root.
    const server = tls.createServer({ cert: issued.certPem, key: certKeyPem }, (s) => s.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: NAME, ca: root.toString() });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true);
      socket.destroy();
      // The same chain for another name is refused: the check is real.
      const wrong = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'other.tunnel.example.test', ca: root.toString() });
      const [err] = await once(wrong, 'error');
      assert.equal((err as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      server.close();
    }

    assert.ok(challenge.store.setTokens.length >= 1, 'the key authorization went through the store');
    assert.equal(challenge.store.live.size, 0, 'challenges are deleted afterwards');
    for (const note of notes) assert.doesNotMatch(note, /PRIVATE KEY/);
  });

  test('a wrong key authorization fails with ACME_FAILED naming the authorization', async () => {
    challenge.lie = true;
    challenge.requests.length = 0;
    try {
      // Another name, so pebble cannot reuse the valid authorization of the first test.
      const err = await obtainCertificate(options(), 'desk-wrong.tunnel.example.test', generateAcmeKeyPem()).then(
        () => assert.fail('issued despite a wrong key authorization'),
        (e: unknown) => e,
      );
      assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
      assert.match(err.message, /authorization/);
      assert.match(err.message, /urn:ietf:params:acme:error:unauthorized/);
      assert.ok(challenge.requests.length >= 1, 'pebble fetched the challenge');
      assert.equal(challenge.store.live.size, 0, 'challenges are deleted after a failure too');
    } finally {
      challenge.lie = false;
    }
  });

  test('an untrusted CA certificate fails closed', async () => {
    const err = await obtainCertificate(options({ ca: undefined }), NAME, generateAcmeKeyPem()).catch((e: unknown) => e);
    assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
    assert.match(err.message, /directory/);
  });
});

describe('obtainCertificate when pebble rejects half the nonces', { skip: skipPebble }, () => {
  let challenge: ChallengeServer;
  let pebble: Pebble;
  before(async () => {
    challenge = await startChallengeServer();
    pebble = await startPebble({ httpPort: challenge.port, env: { PEBBLE_WFE_NONCEREJECT: '50' } });
  });
  after(async () => {
    await pebble?.stop();
    await challenge?.close();
  });

  test('retries badNonce with a fresh nonce and still issues', async () => {
    const retries: Array<Record<string, string | number> | undefined> = [];
    const log = (message: string, fields?: Record<string, string | number>) => {
      if (message.includes('badNonce')) retries.push(fields);
    };
    const certKeyPem = generateAcmeKeyPem();
    const options = { directoryUrl: pebble.directoryUrl, ca: pebble.caPem, accountKeyPem: generateAcmeKeyPem(), challenges: challenge.store, log };
    const issued = await obtainCertificate(options, NAME, certKeyPem);
    assert.equal(splitChain(issued.certPem)[0]!.checkHost(NAME), NAME);
    assert.ok(retries.length >= 1, 'pebble rejected at least one nonce');
    assert.equal(challenge.store.live.size, 0);
  });
});

describe('obtainCertificate argument checks', () => {
  const base = (): AcmeOptions => ({
    directoryUrl: 'https://127.0.0.1:1/dir',
    accountKeyPem: generateAcmeKeyPem(),
    challenges: new RecordingStore(),
  });

  test('an http:// directory is INVALID_ARGUMENT', async () => {
    const err = await obtainCertificate({ ...base(), directoryUrl: 'http://127.0.0.1:14000/dir' }, NAME, generateAcmeKeyPem()).catch((e: unknown) => e);
    assert.ok(isPortholeError(err, 'INVALID_ARGUMENT'), String(err));
  });

  test('the account key as certificate key, an RSA key, a wildcard or an IP are INVALID_ARGUMENT', async () => {
    const o = base();
    const cases: Array<[AcmeOptions, string, string]> = [
      [o, NAME, o.accountKeyPem],
      [o, '*.tunnel.example.test', generateAcmeKeyPem()],
      [o, '127.0.0.1', generateAcmeKeyPem()],
      [{ ...o, email: 'a@b.test\r\nX: y' }, NAME, generateAcmeKeyPem()],
      [{ ...o, timeoutMs: 0 }, NAME, generateAcmeKeyPem()],
      [o, NAME, rsaKeyPem()],
      [{ ...o, accountKeyPem: rsaKeyPem() }, NAME, generateAcmeKeyPem()],
    ];
    for (const [options, name, key] of cases) {
      const err = await obtainCertificate(options, name, key).catch((e: unknown) => e);
      assert.ok(isPortholeError(err, 'INVALID_ARGUMENT'), `${name}: ${String(err)}`);
    }
  });

  test('a CA that does not answer fails with ACME_FAILED naming the step, within the time-out', async () => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await obtainCertificate({ ...base(), directoryUrl: `https://127.0.0.1:${port}/dir` }, NAME, generateAcmeKeyPem()).catch((e: unknown) => e);
    assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
    assert.match(err.message, /^ACME directory failed/);
  });
});

describe('obtainCertificate against a hostile CA', () => {
  // A real HTTPS server on loopback playing a broken or malicious ACME directory.
  const ca = createCertificate({ commonName: 'hostile CA test root', isCA: true });
  const leaf = createCertificate({ commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], issuer: ca });
  let server: https.Server;
  let base: string;
  const hung = new Set<http.ServerResponse>();
  before(async () => {
    server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`);
      } else if (req.url === '/plain-http') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ newNonce: 'http://127.0.0.1/nonce', newAccount: `${base}/acct`, newOrder: `${base}/order` }));
      } else {
        hung.add(res); // /hang: headers never come
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const res of hung) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const run = (path: string, timeoutMs = 10_000) =>
    obtainCertificate(
      { directoryUrl: `${base}${path}`, ca: ca.certPem, accountKeyPem: generateAcmeKeyPem(), challenges: new RecordingStore(), timeoutMs },
      NAME,
      generateAcmeKeyPem(),
    ).catch((e: unknown) => e);

  test('a body over 1 MiB is refused', async () => {
    const err = await run('/big');
    assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
    assert.match(err.message, /^ACME directory failed: .*over 1048576 bytes/);
  });

  test('a URL that is not https is refused', async () => {
    const err = await run('/plain-http');
    assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
    assert.match(err.message, /no https directory newNonce/);
  });

  test('a CA that never answers is cut off by timeoutMs', async () => {
    const started = Date.now();
    const err = await run('/hang', 300);
    assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
    assert.match(err.message, /^ACME directory failed: timed out after 300 ms/);
    assert.ok(Date.now() - started < 5_000);
  });

  test('an aborted signal stops the issuance', async () => {
    const controller = new AbortController();
    const pending = obtainCertificate(
      { directoryUrl: `${base}/hang`, ca: ca.certPem, accountKeyPem: generateAcmeKeyPem(), challenges: new RecordingStore(), signal: controller.signal },
      NAME,
      generateAcmeKeyPem(),
    ).catch((e: unknown) => e);
    setImmediate(() => controller.abort());
    const err = await pending;
    assert.ok(isPortholeError(err, 'ACME_FAILED'), String(err));
    assert.match(err.message, /aborted/);
  });
});

/** An RSA key, to check that keys other than P-256 are refused. */
function rsaKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

describe('JWS (RFC 7515/7638/8555)', () => {
  // RFC 7515 Appendix A.3's P-256 key. Its RFC 7638 thumbprint was computed independently:
  // SHA-256 (Python hashlib) of {"crv":"P-256","kty":"EC","x":"f83O…","y":"x_FE…"}, base64url.
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
    y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
    d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI',
  };
  const pem = createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) as string;

  test('the thumbprint of a fixed EC key matches an independent computation', () => {
    const account = loadAccountKey(pem);
    assert.deepEqual(account.jwk, { crv: 'P-256', kty: 'EC', x: jwk.x, y: jwk.y });
    assert.equal(account.thumbprint, 'oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U');
    assert.equal(jwkThumbprint({ crv: 'P-256', kty: 'EC', x: jwk.x, y: jwk.y }), account.thumbprint);
    assert.equal(keyAuthorization('tok_en-1', account.thumbprint), `tok_en-1.${account.thumbprint}`);
  });

  test('a signed request verifies with the embedded JWK; kid replaces jwk; POST-as-GET has an empty payload', () => {
    const account = loadAccountKey(pem);
    const first = signJws(account, { nonce: 'n0nce', url: 'https://ca.test/new-acct' }, { termsOfServiceAgreed: true });
    const header = JSON.parse(Buffer.from(first.protected, 'base64url').toString('utf8'));
    assert.deepEqual(header, { alg: 'ES256', nonce: 'n0nce', url: 'https://ca.test/new-acct', jwk: account.jwk });
    assert.deepEqual(JSON.parse(Buffer.from(first.payload, 'base64url').toString('utf8')), { termsOfServiceAgreed: true });
    const signature = Buffer.from(first.signature, 'base64url');
    assert.equal(signature.length, 64, 'R || S, not DER');
    const publicKey = createPublicKey({ key: { ...header.jwk }, format: 'jwk' });
    const input = Buffer.from(`${first.protected}.${first.payload}`);
    assert.ok(verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature));
    assert.ok(!verify('sha256', Buffer.from(`${first.protected}.e30`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature));

    const get = signJws(account, { nonce: 'n1', url: 'https://ca.test/order/1', kid: 'https://ca.test/acct/7' });
    const getHeader = JSON.parse(Buffer.from(get.protected, 'base64url').toString('utf8'));
    assert.deepEqual(getHeader, { alg: 'ES256', nonce: 'n1', url: 'https://ca.test/order/1', kid: 'https://ca.test/acct/7' });
    assert.equal(get.payload, '');
  });
});

/**
 * `openssl req -verify -text`, its text output. OpenSSL 3.0 exits 0 even when the
 * signature is bad, so success is its "verify OK" line on stderr, nothing less.
 */
function opensslVerify(file: string): string {
  const r = spawnSync('openssl', ['req', '-in', file, '-noout', '-verify', '-text'], { encoding: 'utf8' });
  if (r.status !== 0 || !/self-signature verify OK|verify OK/.test(r.stderr)) throw new Error(`openssl: ${r.stderr.trim()}`);
  return r.stdout;
}

describe('CSR (RFC 2986)', { skip: skipUnlessExecutable('openssl') }, () => {
  test('openssl verifies the signature and shows the CN and the SAN', () => {
    const dir = mkdtempSync(join(tmpdir(), 'porthole-csr-'));
    try {
      const key = createPrivateKey(generateAcmeKeyPem());
      const file = join(dir, 'csr.pem');
      writeFileSync(file, csrPem(createCsr('Desk1.Tunnel.Example.Test', key)));
      const out = opensslVerify(file);
      assert.match(out, /Subject: CN\s*=\s*desk1\.tunnel\.example\.test/);
      assert.match(out, /DNS:desk1\.tunnel\.example\.test/);
      assert.match(out, /ecdsa-with-SHA256/);
      assert.match(out, /ASN1 OID: prime256v1/);
      const pub = execFileSync('openssl', ['req', '-in', file, '-noout', '-pubkey'], { encoding: 'utf8' });
      assert.ok(createPublicKey(pub).export({ type: 'spki', format: 'der' }).equals(createPublicKey(key).export({ type: 'spki', format: 'der' })));
      // A tampered CSR (one byte of the name changed) must fail verification: the check is real.
      const der = createCsr('desk1.tunnel.example.test', key);
      const at = der.indexOf(Buffer.from('desk1'));
      der[at] = 'x'.charCodeAt(0);
      writeFileSync(file, csrPem(der));
      assert.throws(() => opensslVerify(file), /verify failure/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a name longer than 64 characters goes in the SAN only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'porthole-csr-'));
    try {
      const long = `${'a'.repeat(60)}.tunnel.example.test`;
      const file = join(dir, 'csr.pem');
      writeFileSync(file, csrPem(createCsr(long, createPrivateKey(generateAcmeKeyPem()))));
      const out = opensslVerify(file);
      assert.ok(out.includes(`DNS:${long}`));
      assert.doesNotMatch(out, /CN\s*=/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
