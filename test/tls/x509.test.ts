// Tests for src/tls/der.ts and src/tls/x509.ts: DER encodings checked byte for byte, then the
// certificates read back by Node's X509Certificate, used in real TLS 1.3 handshakes on
// 127.0.0.1, and (when installed) checked by openssl in strict mode.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { isPortholeError } from '../../src/errors.js';
import * as der from '../../src/tls/der.js';
import { certificatePins, createCertificate, type IssuedCertificate } from '../../src/tls/x509.js';
import { listen, tempDir } from '../helpers/servers.js';

const hex = (b: Buffer) => b.toString('hex');
const DAY_MS = 86_400_000;

describe('DER encoder', () => {
  test('INTEGER: minimal two’s complement', () => {
    const cases: [bigint | number, string][] = [
      [0, '020100'],
      [127, '02017f'],
      [128, '02020080'],
      [255, '020200ff'],
      [256, '02020100'],
      [32767, '02027fff'],
      [32768, '0203008000'],
      [-1, '0201ff'],
      [-128, '020180'],
      [-129, '0202ff7f'],
      [-256, '0202ff00'],
      [2n ** 64n, '0209010000000000000000'],
    ];
    for (const [value, expected] of cases) assert.equal(hex(der.integer(value)), expected, String(value));
  });

  test('INTEGER from a Buffer: unsigned magnitude, leading zeros stripped, high bit padded', () => {
    assert.equal(hex(der.integer(Buffer.from('ff', 'hex'))), '020200ff');
    assert.equal(hex(der.integer(Buffer.from('80000000', 'hex'))), '02050080000000');
    assert.equal(hex(der.integer(Buffer.from('00007f01', 'hex'))), '02027f01');
    assert.equal(hex(der.integer(Buffer.from('0000', 'hex'))), '020100');
    assert.equal(hex(der.integer(Buffer.alloc(0))), '020100');
    assert.throws(() => der.integer(1.5), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  });

  test('lengths: short form to 127, long form from 128', () => {
    assert.equal(hex(der.encodeLength(0)), '00');
    assert.equal(hex(der.encodeLength(127)), '7f');
    assert.equal(hex(der.encodeLength(128)), '8180');
    assert.equal(hex(der.encodeLength(255)), '81ff');
    assert.equal(hex(der.encodeLength(256)), '820100');
    assert.equal(hex(der.encodeLength(65535)), '82ffff');
    assert.equal(hex(der.encodeLength(65536)), '83010000');
    const long = der.octetString(Buffer.alloc(65536));
    assert.equal(hex(long.subarray(0, 5)), '0483010000');
    assert.equal(long.length, 5 + 65536);
    assert.deepEqual(der.readTlv(long), { tag: 0x04, start: 0, contentStart: 5, end: 65541 });
    assert.equal(hex(der.octetString(Buffer.alloc(127)).subarray(0, 2)), '047f');
    assert.equal(hex(der.octetString(Buffer.alloc(128)).subarray(0, 3)), '048180');
  });

  test('OBJECT IDENTIFIER', () => {
    assert.equal(hex(der.oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.equal(hex(der.oid('2.5.29.17')), '0603551d11');
    assert.equal(hex(der.oid('2.5.4.3')), '0603550403');
    assert.equal(hex(der.oid('1.3.6.1.5.5.7.3.1')), '06082b06010505070301');
    assert.equal(hex(der.oid('2.999.3')), '0603883703'); // X.690 §8.19.5 example: 2.999 → 1079
    assert.equal(hex(der.oid('2.25.340282366920938463463374607431768211455')).slice(0, 8), '06146983'); // UUID arc > 2^53: 19 base-128 groups
    for (const bad of ['', '1', '3.1', '1.40', '1.2.', '1..2', '1.02', 'a.b']) {
      assert.throws(() => der.oid(bad), (err) => isPortholeError(err, 'INVALID_ARGUMENT'), bad);
    }
  });

  test('UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    const last = new Date(Date.UTC(2049, 11, 31, 23, 59, 59, 999));
    const first = new Date(Date.UTC(2050, 0, 1, 0, 0, 0));
    assert.equal(der.time(last).toString('latin1'), '\x17\x0d491231235959Z');
    assert.equal(der.time(first).toString('latin1'), '\x18\x0f20500101000000Z');
    assert.equal(der.time(new Date(Date.UTC(1950, 0, 1))).toString('latin1'), '\x17\x0d500101000000Z');
    assert.equal(der.time(new Date(Date.UTC(1949, 11, 31))).toString('latin1'), '\x18\x0f19491231000000Z');
    assert.equal(der.time(new Date(Date.UTC(2026, 1, 3, 4, 5, 6))).toString('latin1'), '\x17\x0d260203040506Z');
    assert.throws(() => der.utcTime(first), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
    assert.throws(() => der.time(new Date(Number.NaN)), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  });

  test('BOOLEAN, NULL, strings, BIT STRING, named bits', () => {
    assert.equal(hex(der.boolean(true)), '0101ff');
    assert.equal(hex(der.boolean(false)), '010100');
    assert.equal(hex(der.nullValue()), '0500');
    assert.equal(hex(der.utf8String('ä')), '0c02c3a4');
    assert.throws(() => der.utf8String('\ud800'), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
    assert.equal(hex(der.printableString('A b')), '1303412062');
    assert.throws(() => der.printableString('a@b'), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
    assert.equal(hex(der.ia5String('x.y')), '1603782e79');
    assert.equal(hex(der.bitString(Buffer.from([0xab]))), '030200ab');
    assert.equal(hex(der.namedBits([0])), '03020780'); // digitalSignature
    assert.equal(hex(der.namedBits([5, 6])), '03020106'); // keyCertSign | cRLSign
    assert.equal(hex(der.namedBits([0, 8])), '0303078080'); // decipherOnly spills into a second octet
    assert.equal(hex(der.namedBits([])), '030100');
  });

  test('SEQUENCE, SET OF in DER order, explicit and implicit tags', () => {
    assert.equal(hex(der.sequence()), '3000');
    assert.equal(hex(der.sequence(der.integer(1), der.nullValue())), '30050201010500');
    assert.equal(hex(der.setOf(der.nullValue(), der.integer(2), der.integer(1))), '3108' + '020101' + '020102' + '0500');
    assert.equal(hex(der.setOf(der.integer(2), der.integer(1))), '3106020101020102');
    assert.equal(hex(der.explicit(0, der.integer(2))), 'a003020102');
    assert.equal(hex(der.explicit(3, der.sequence())), 'a3023000');
    assert.equal(hex(der.implicit(2, der.ia5String('a'))), '820161'); // primitive stays primitive
    assert.equal(hex(der.implicit(1, der.sequence())), 'a100'); // constructed stays constructed
    assert.throws(() => der.explicit(31, der.nullValue()), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  });

  test('reader: children, truncation, indefinite lengths', () => {
    const seq = der.sequence(der.integer(1), der.octetString(Buffer.alloc(200)));
    const children = der.readChildren(seq, der.readTlv(seq));
    assert.deepEqual(
      children.map((c) => c.tag),
      [0x02, 0x04],
    );
    assert.equal(children[1]!.end - children[1]!.contentStart, 200);
    assert.throws(() => der.readTlv(seq.subarray(0, 10)), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
    assert.throws(() => der.readTlv(Buffer.from('3080', 'hex')), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  });
});

// One CA for the suite; creating it takes a few milliseconds.
const ca = createCertificate({ commonName: 'porthole test CA', isCA: true });
const caX509 = new X509Certificate(ca.certPem);

function leafFor(names: { dnsNames?: string[]; ipAddresses?: string[] }, extra: { issuer?: IssuedCertificate | null; days?: number; now?: Date } = {}) {
  const issuer = extra.issuer === null ? undefined : (extra.issuer ?? ca);
  return createCertificate({ commonName: 'porthole test leaf', ...names, ...extra, issuer });
}

function validity(cert: X509Certificate): { from: number; to: number } {
  return { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
}

describe('certificate contents, as Node reads them', () => {
  test('CA: self-signed, CA:TRUE, 10 years, backdated one hour', () => {
    const before = Date.now();
    const fresh = createCertificate({ commonName: 'Desk CA', isCA: true });
    const x = new X509Certificate(fresh.certPem);
    assert.equal(x.subject, 'CN=Desk CA');
    assert.equal(x.issuer, 'CN=Desk CA');
    assert.equal(x.ca, true);
    assert.equal(x.subjectAltName, undefined);
    assert.equal(x.checkIssued(x), true);
    assert.equal(x.verify(x.publicKey), true);
    const { from, to } = validity(x);
    assert.ok(Math.abs(from - (before - 3_600_000)) < 5_000, x.validFrom);
    assert.ok(Math.abs(to - (before + 3650 * DAY_MS)) < 5_000, x.validTo);
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  test('leaf: subject, SANs, 397 days, EKU, issued by and verified with the CA', () => {
    const before = Date.now();
    const leaf = leafFor({ dnsNames: ['desk.tunnel.example.test', '*.Tunnel.Example.Test'], ipAddresses: ['127.0.0.1', '::1', '2001:db8::1:0:0:1', '::ffff:192.0.2.1'] });
    const x = new X509Certificate(leaf.certPem);
    assert.equal(x.subject, 'CN=porthole test leaf');
    assert.equal(x.issuer, 'CN=porthole test CA');
    assert.equal(
      x.subjectAltName,
      'DNS:desk.tunnel.example.test, DNS:*.tunnel.example.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, ' +
        'IP Address:2001:DB8:0:0:1:0:0:1, IP Address:0:0:0:0:0:FFFF:C000:201',
    );
    assert.equal(x.ca, false);
    assert.equal(x.checkIssued(caX509), true);
    assert.equal(x.verify(caX509.publicKey), true);
    assert.equal(x.verify(x.publicKey), false);
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(x.checkHost('desk.tunnel.example.test'), 'desk.tunnel.example.test');
    assert.equal(x.checkIP('::1'), '::1');
    const { from, to } = validity(x);
    assert.ok(Math.abs(from - (before - 3_600_000)) < 5_000, x.validFrom);
    assert.ok(Math.abs(to - (before + 397 * DAY_MS)) < 5_000, x.validTo);
    // A positive serial of at most 17 octets (128 random bits), different every time.
    assert.match(x.serialNumber, /^[0-9A-F]{2,34}$/);
    assert.notEqual(x.serialNumber, new X509Certificate(leafFor({ dnsNames: ['a.test'] }).certPem).serialNumber);
  });

  test('the key is PKCS#8 P-256 and belongs to the certificate', () => {
    const leaf = leafFor({ dnsNames: ['localhost'] });
    assert.match(leaf.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(leaf.keyPem);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(new X509Certificate(leaf.certPem).checkPrivateKey(key), true);
  });

  test('validity past 2049 is GeneralizedTime, and Node reads it', () => {
    const now = new Date(Date.UTC(2026, 0, 1));
    const longCa = createCertificate({ commonName: 'long CA', isCA: true, days: 30 * 365, now });
    assert.match(new X509Certificate(longCa.certPem).validTo, /2055 GMT$/);
    const fields = tbsFields(longCa.certPem);
    const times = der.readChildren(fields.buffer, fields.children[4]!);
    assert.deepEqual(
      times.map((t) => t.tag),
      [der.TAG.UTC_TIME, der.TAG.GENERALIZED_TIME],
    );
  });

  test('the issuer Name is the CA subject byte for byte', () => {
    const leaf = tbsFields(leafFor({ dnsNames: ['a.test'] }).certPem);
    const root = tbsFields(ca.certPem);
    const slice = (f: typeof leaf, i: number) => f.buffer.subarray(f.children[i]!.start, f.children[i]!.end);
    assert.ok(slice(leaf, 3).equals(slice(root, 5))); // tbs[3] issuer, tbs[5] subject
  });

  test('certificatePins matches X509Certificate and a SHA-256 over the exported SPKI', () => {
    for (const issued of [ca, leafFor({ dnsNames: ['pin.test'] }), leafFor({ ipAddresses: ['10.0.0.1'] }, { issuer: null })]) {
      const x = new X509Certificate(issued.certPem);
      const spki = x.publicKey.export({ type: 'spki', format: 'der' });
      const expected = { fingerprint256: x.fingerprint256, spkiSha256: createHash('sha256').update(spki).digest('base64') };
      assert.deepEqual(certificatePins(issued.certPem), expected);
      assert.deepEqual({ fingerprint256: issued.fingerprint256, spkiSha256: issued.spkiSha256 }, expected);
    }
    assert.throws(() => certificatePins('not a certificate'), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  });
});

/** The TBSCertificate fields of a PEM certificate: [0] version, serial, signature, issuer, validity, subject, spki, [3]. */
function tbsFields(pem: string): { buffer: Buffer; children: der.Tlv[] } {
  const buffer = new X509Certificate(pem).raw;
  const [tbs] = der.readChildren(buffer, der.readTlv(buffer));
  return { buffer, children: der.readChildren(buffer, tbs!) };
}

describe('options are checked', () => {
  const rejects = (options: Parameters<typeof createCertificate>[0], what: string) =>
    assert.throws(() => createCertificate(options), (err) => isPortholeError(err, 'INVALID_ARGUMENT'), what);

  test('bad names, addresses, lifetimes and combinations fail loudly', () => {
    rejects({ commonName: '', dnsNames: ['a.test'] }, 'empty CN');
    rejects({ commonName: 'x'.repeat(65), dnsNames: ['a.test'] }, 'CN over 64');
    rejects({ commonName: 'leaf' }, 'leaf without SANs');
    rejects({ commonName: 'ca', isCA: true, dnsNames: ['a.test'] }, 'CA with SANs');
    rejects({ commonName: 'ca', isCA: true, issuer: ca }, 'intermediate');
    for (const name of ['*.test', 'a.*.test', '*a.b.test', 'a..test', '-a.test', 'a-.test', 'a_b.test', 'a.test.', 'ä.test', '127.0.0.1', 'x'.repeat(64) + '.test']) {
      rejects({ commonName: 'leaf', dnsNames: [name] }, name);
    }
    for (const ip of ['256.1.1.1', '01.2.3.4', '1.2.3', 'fe80::1%eth0', '[::1]', 'localhost']) {
      rejects({ commonName: 'leaf', ipAddresses: [ip] }, ip);
    }
    for (const days of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 3_000_000]) {
      rejects({ commonName: 'leaf', dnsNames: ['a.test'], days }, String(days));
    }
  });

  test('the issuer must be a P-256 CA whose key matches', () => {
    const leaf = leafFor({ dnsNames: ['a.test'] });
    const other = createCertificate({ commonName: 'other CA', isCA: true });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    rejects({ commonName: 'l', dnsNames: ['a.test'], issuer: leaf }, 'leaf as issuer');
    rejects({ commonName: 'l', dnsNames: ['a.test'], issuer: { certPem: ca.certPem, keyPem: other.keyPem } }, 'key mismatch');
    rejects({ commonName: 'l', dnsNames: ['a.test'], issuer: { certPem: ca.certPem, keyPem: rsa } }, 'RSA key');
    rejects({ commonName: 'l', dnsNames: ['a.test'], issuer: { certPem: 'junk', keyPem: ca.keyPem } }, 'junk cert');
    rejects({ commonName: 'l', dnsNames: ['a.test'], issuer: { certPem: ca.certPem, keyPem: 'junk' } }, 'junk key');
  });

  test('names are lowercased and duplicates dropped', () => {
    const x = new X509Certificate(leafFor({ dnsNames: ['A.Test', 'a.test'], ipAddresses: ['::1', '0:0:0:0:0:0:0:1'] }).certPem);
    assert.equal(x.subjectAltName, 'DNS:a.test, IP Address:0:0:0:0:0:0:0:1');
  });
});

interface Outcome {
  /** Undefined when the handshake succeeded and the peer was authorized. */
  code: string | undefined;
  protocol?: string | null;
}

/** A TLS 1.3 server on `host`:0 presenting `cert` (PEM, may be a chain), closed with all its sockets after `fn`. */
async function withServer<T>(
  identity: { key: string; cert: string },
  fn: (port: number) => Promise<T>,
  host = '127.0.0.1',
  serverOptions: tls.TlsOptions = {},
): Promise<T> {
  const server = tls.createServer({ ...identity, minVersion: 'TLSv1.3', ...serverOptions }, (socket) => {
    socket.on('error', () => {}); // the client hangs up as soon as it has its answer
    socket.end();
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server, 0, host);
  try {
    return await fn(port);
  } finally {
    for (const socket of sockets) socket.destroy();
    const closed = once(server, 'close');
    server.close();
    await closed;
  }
}

function connect(options: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', minVersion: 'TLSv1.3', ...options });
    socket.once('secureConnect', () => {
      const outcome = { code: socket.authorized ? undefined : String(socket.authorizationError), protocol: socket.getProtocol() };
      socket.destroy();
      resolve(outcome);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ code: err.code });
    });
  });
}

async function canListen(host: string): Promise<boolean> {
  const server = tls.createServer();
  server.on('error', () => {});
  try {
    await listen(server, 0, host);
    await new Promise((resolve) => server.close(resolve));
    return true;
  } catch {
    return false;
  }
}

describe('real TLS 1.3 handshakes', () => {
  const desk = leafFor({ dnsNames: ['desk.tunnel.example.test'] });
  const identity = { key: desk.keyPem, cert: desk.certPem };

  test('a leaf signed by the CA is authorized for its name', async () => {
    await withServer(identity, async (port) => {
      assert.deepEqual(await connect({ port, ca: [ca.certPem], servername: 'desk.tunnel.example.test' }), {
        code: undefined,
        protocol: 'TLSv1.3',
      });
      const wrong = await connect({ port, ca: [ca.certPem], servername: 'other.tunnel.example.test' });
      assert.equal(wrong.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    });
  });

  test('without the CA the client refuses the chain', async () => {
    await withServer(identity, async (port) => {
      const leafOnly = await connect({ port, servername: 'desk.tunnel.example.test' });
      assert.equal(leafOnly.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      const otherCa = createCertificate({ commonName: 'other CA', isCA: true });
      const wrongCa = await connect({ port, ca: [otherCa.certPem], servername: 'desk.tunnel.example.test' });
      assert.equal(wrongCa.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });
    await withServer({ key: desk.keyPem, cert: desk.certPem + ca.certPem }, async (port) => {
      const withChain = await connect({ port, servername: 'desk.tunnel.example.test' });
      assert.equal(withChain.code, 'SELF_SIGNED_CERT_IN_CHAIN');
    });
  });

  test('a wildcard covers exactly one label', async () => {
    const wild = leafFor({ dnsNames: ['*.tunnel.example.test'] });
    await withServer({ key: wild.keyPem, cert: wild.certPem }, async (port) => {
      assert.equal((await connect({ port, ca: [ca.certPem], servername: 'x.tunnel.example.test' })).code, undefined);
      const deep = await connect({ port, ca: [ca.certPem], servername: 'a.b.tunnel.example.test' });
      assert.equal(deep.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      const bare = await connect({ port, ca: [ca.certPem], servername: 'tunnel.example.test' });
      assert.equal(bare.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    });
  });

  test('IP SANs: 127.0.0.1 and ::1 by address', async () => {
    const local = leafFor({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    const byIp = { key: local.keyPem, cert: local.certPem };
    await withServer(byIp, async (port) => {
      assert.equal((await connect({ host: '127.0.0.1', port, ca: [ca.certPem] })).code, undefined);
      assert.equal((await connect({ host: '127.0.0.1', servername: 'localhost', port, ca: [ca.certPem] })).code, undefined);
    });
    const v4only = leafFor({ ipAddresses: ['127.0.0.2'] });
    await withServer({ key: v4only.keyPem, cert: v4only.certPem }, async (port) => {
      assert.equal((await connect({ host: '127.0.0.1', port, ca: [ca.certPem] })).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    });
  });

  test('IP SAN ::1 over IPv6', async (t) => {
    if (!(await canListen('::1'))) {
      if (process.env['PORTHOLE_TEST_REQUIRE_ALL'] === '1') assert.fail('::1 is not available and PORTHOLE_TEST_REQUIRE_ALL=1');
      t.skip('IPv6 loopback ::1 is not available here');
      return;
    }
    const local = leafFor({ ipAddresses: ['::1'] });
    await withServer(
      { key: local.keyPem, cert: local.certPem },
      async (port) => {
        assert.equal((await connect({ host: '::1', port, ca: [ca.certPem] })).code, undefined);
      },
      '::1',
    );
  });

  test('a self-signed leaf is accepted only when it is its own CA', async () => {
    const self = leafFor({ dnsNames: ['self.example.test'], ipAddresses: ['127.0.0.1'] }, { issuer: null });
    const x = new X509Certificate(self.certPem);
    assert.equal(x.ca, false);
    assert.equal(x.verify(x.publicKey), true);
    // OpenSSL's X509_check_issued wants keyCertSign in the issuer's keyUsage, which a leaf
    // lacks; chain verification below and `openssl verify -x509_strict` still accept it.
    assert.equal(x.checkIssued(x), false);
    await withServer({ key: self.keyPem, cert: self.certPem }, async (port) => {
      assert.equal((await connect({ port, ca: [self.certPem], servername: 'self.example.test' })).code, undefined);
      assert.equal((await connect({ port, ca: [self.certPem] })).code, undefined); // by IP
      assert.equal((await connect({ port, servername: 'self.example.test' })).code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
      assert.equal((await connect({ port, ca: [ca.certPem], servername: 'self.example.test' })).code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    });
  });

  test('expired and not-yet-valid leaves are refused', async () => {
    const expired = leafFor({ dnsNames: ['old.example.test'] }, { now: new Date(Date.now() - 10 * DAY_MS), days: 1 });
    await withServer({ key: expired.keyPem, cert: expired.certPem }, async (port) => {
      assert.equal((await connect({ port, ca: [ca.certPem], servername: 'old.example.test' })).code, 'CERT_HAS_EXPIRED');
    });
    const future = leafFor({ dnsNames: ['new.example.test'] }, { now: new Date(Date.now() + 10 * DAY_MS) });
    await withServer({ key: future.keyPem, cert: future.certPem }, async (port) => {
      assert.equal((await connect({ port, ca: [ca.certPem], servername: 'new.example.test' })).code, 'CERT_NOT_YET_VALID');
    });
  });

  test('a leaf works as a client certificate (mutual TLS)', async () => {
    const client = leafFor({ dnsNames: ['phone.example.test'] });
    // In TLS 1.3 the client finishes before the server has judged its certificate, so the
    // server's view is the one to check.
    const server = tls.createServer({ ...identity, minVersion: 'TLSv1.3', requestCert: true, rejectUnauthorized: true, ca: [ca.certPem] });
    const port = await listen(server);
    const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    const socket = tls.connect({ host: '127.0.0.1', port, ca: [ca.certPem], servername: 'desk.tunnel.example.test', key: client.keyPem, cert: client.certPem });
    const [peer] = await accepted;
    assert.equal(peer.authorized, true);
    assert.equal(peer.getPeerCertificate().subject.CN, 'porthole test leaf');
    socket.destroy();
    peer.destroy();
    const closed = once(server, 'close');
    server.close();
    await closed;
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const openssl = hasOpenssl();
const opensslSkip = openssl ? false : 'openssl is not installed';
if (!openssl && process.env['PORTHOLE_TEST_REQUIRE_ALL'] === '1') {
  test('openssl is required (PORTHOLE_TEST_REQUIRE_ALL=1)', () => assert.fail('openssl is not installed'));
}

describe('cross-checked by openssl', { skip: opensslSkip }, () => {
  const run = (args: string[], input?: string) => execFileSync('openssl', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }), stdio: ['pipe', 'pipe', 'pipe'] });

  test('x509 -text shows what was asked for', () => {
    const leaf = leafFor({ dnsNames: ['desk.tunnel.example.test'], ipAddresses: ['127.0.0.1'] });
    const text = run(['x509', '-noout', '-text'], leaf.certPem);
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /Issuer: CN = porthole test CA/);
    assert.match(text, /Subject: CN = porthole test leaf/);
    assert.match(text, /NIST CURVE: P-256/);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /DNS:desk\.tunnel\.example\.test, IP Address:127\.0\.0\.1/);
    const caText = run(['x509', '-noout', '-text'], ca.certPem);
    assert.match(caText, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/);
    assert.match(caText, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign/);
    // The leaf's AKI is the CA's SKI.
    const ski = /Subject Key Identifier: *\n\s+([0-9A-F:]+)/.exec(caText)?.[1];
    assert.ok(ski);
    assert.match(text, new RegExp(`Authority Key Identifier: *\\n\\s+(?:keyid:)?${ski}`));
  });

  test('verify -x509_strict accepts the chain, the CA and a self-signed leaf', () => {
    const { dir, cleanup } = tempDir('porthole-x509-');
    try {
      const caFile = join(dir, 'ca.pem');
      const leafFile = join(dir, 'leaf.pem');
      writeFileSync(caFile, ca.certPem);
      writeFileSync(leafFile, leafFor({ dnsNames: ['desk.tunnel.example.test', '*.tunnel.example.test'], ipAddresses: ['::1'] }).certPem);
      assert.equal(run(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, leafFile]).trim(), `${leafFile}: OK`);
      assert.equal(run(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, leafFile]).trim(), `${leafFile}: OK`);
      assert.equal(run(['verify', '-x509_strict', '-CAfile', caFile, caFile]).trim(), `${caFile}: OK`);
      const selfFile = join(dir, 'self.pem');
      writeFileSync(selfFile, leafFor({ dnsNames: ['self.example.test'] }, { issuer: null }).certPem);
      assert.equal(run(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', selfFile, selfFile]).trim(), `${selfFile}: OK`);
      assert.throws(() => run(['verify', '-CAfile', caFile, selfFile]));
      const pubkeyHash = createHash('sha256')
        .update(createPublicKey(ca.certPem).export({ type: 'spki', format: 'der' }))
        .digest('base64');
      assert.equal(pubkeyHash, ca.spkiSha256);
    } finally {
      cleanup();
    }
  });

  test('asn1parse reads the whole encoding with nothing left over', () => {
    const out = run(['asn1parse', '-inform', 'PEM'], leafFor({ dnsNames: ['a.test'] }).certPem);
    assert.doesNotMatch(out, /error/i);
    assert.match(out, /prim: OBJECT +:ecdsa-with-SHA256/);
  });
});
