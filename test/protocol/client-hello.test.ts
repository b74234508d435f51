// Tests for src/protocol/client-hello.ts: the relay reads SNI and ALPN from real ClientHellos
// (captured from Node's own TLS client), whole, truncated, dripped and re-fragmented, and
// refuses everything that is not a well-formed ClientHello — at once, never "incomplete".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ClientHelloResult,
  createClientHelloReader,
  DEFAULT_MAX_CLIENT_HELLO_BYTES,
  parseClientHello,
  TLS_ALERT,
  tlsAlert,
} from '../../src/protocol/client-hello.js';
import { captureHello } from '../helpers/client-hello.js';
import { isPortholeError } from '../../src/errors.js';

const SERVERNAME = 'Desk-1.Tunnel.Example.Test';
const ALPN = ['porthole/1', 'h2', 'http/1.1'];

const withSni = await captureHello({ servername: SERVERNAME, ALPNProtocols: ALPN });
const withoutSni = await captureHello({});
const tls12 = await captureHello({ servername: 'legacy.example.test', maxVersion: 'TLSv1.2' });

// --- A builder for hostile and unusual hellos -------------------------------------------------
const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 255, n & 255]);
const u24 = (n: number): Buffer => Buffer.from([(n >> 16) & 255, (n >> 8) & 255, n & 255]);
const vec8 = (...parts: Buffer[]): Buffer => Buffer.concat([u8(Buffer.concat(parts).length), ...parts]);
const vec16 = (...parts: Buffer[]): Buffer => Buffer.concat([u16(Buffer.concat(parts).length), ...parts]);
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);
const sniExt = (name: string | Buffer, type = 0): Buffer => ext(0, vec16(u8(type), vec16(Buffer.from(name))));
const alpnExt = (...names: string[]): Buffer => ext(16, vec16(...names.map((n) => vec8(Buffer.from(n)))));
const versionsExt = ext(43, vec8(u16(0x0304), u16(0x0303)));
const extensions = (...exts: Buffer[]): Buffer => vec16(...exts);

interface Parts {
  version?: number;
  sessionId?: Buffer; // raw, with its length prefix
  suites?: Buffer;
  compression?: Buffer;
  extensions?: Buffer | null; // raw, with its length prefix; null: none at all
}
/** A Handshake message holding a ClientHello; each field raw so that tests can make it lie. */
function clientHello(p: Parts = {}): Buffer {
  const body = Buffer.concat([
    u16(p.version ?? 0x0303),
    Buffer.alloc(32, 7),
    p.sessionId ?? vec8(Buffer.alloc(32, 1)),
    p.suites ?? vec16(u16(0x1301), u16(0x1302)),
    p.compression ?? vec8(u8(0)),
    p.extensions === null ? Buffer.alloc(0) : (p.extensions ?? extensions(sniExt('desk.example.test'), alpnExt('h2'), versionsExt)),
  ]);
  return Buffer.concat([u8(1), u24(body.length), body]);
}
/** Wraps handshake bytes in handshake records of the given fragment sizes (the last takes the rest). */
function records(handshake: Buffer, sizes: number[] = [], version = 0x0301): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of [...sizes, handshake.length]) {
    if (at >= handshake.length) break;
    const fragment = handshake.subarray(at, Math.min(at + size, handshake.length));
    out.push(u8(22), u16(version), u16(fragment.length), fragment);
    at += fragment.length;
  }
  return Buffer.concat(out);
}
const hello = (p: Parts = {}): Buffer => records(clientHello(p));
/** The handshake message inside a single-record hello. */
const handshakeOf = (record: Buffer): Buffer => record.subarray(5);

function assertInvalid(result: ClientHelloResult, reason: string, message?: string): void {
  assert.deepEqual(result, { status: 'invalid', reason }, message);
}
function assertOk(result: ClientHelloResult): asserts result is Extract<ClientHelloResult, { status: 'ok' }> {
  assert.equal(result.status, 'ok', JSON.stringify(result));
}

// --- Real hellos ------------------------------------------------------------------------------
test('a real TLS 1.3 hello: SNI lowercased, ALPN in order, TLS 1.3 offered, length exact', () => {
  assert.ok(withSni.includes(Buffer.from(SERVERNAME)), 'Node sends the name as given');
  const r = parseClientHello(withSni);
  assertOk(r);
  assert.deepEqual(r.hello, {
    serverName: 'desk-1.tunnel.example.test',
    alpn: ['porthole/1', 'h2', 'http/1.1'],
    tls13: true,
    legacyVersion: 0x0303,
    length: withSni.length,
  });
});

test('a real hello to an IP address carries no SNI and no ALPN', () => {
  const r = parseClientHello(withoutSni);
  assertOk(r);
  assert.equal(r.hello.serverName, undefined);
  assert.deepEqual(r.hello.alpn, []);
  assert.equal(r.hello.tls13, true);
});

test('a real TLS 1.2-only hello does not offer TLS 1.3', () => {
  const r = parseClientHello(tls12);
  assertOk(r);
  assert.equal(r.hello.serverName, 'legacy.example.test');
  assert.equal(r.hello.tls13, false);
});

test('a hello inside a larger buffer (non-zero byteOffset), followed by early data', () => {
  const early = Buffer.from([23, 3, 3, 0, 3, 1, 2, 3]);
  const big = Buffer.concat([Buffer.alloc(13, 0xee), withSni, early]);
  const view = new Uint8Array(big.buffer, big.byteOffset + 13, withSni.length + early.length);
  const r = parseClientHello(view);
  assertOk(r);
  assert.equal(r.hello.serverName, 'desk-1.tunnel.example.test');
  assert.equal(r.hello.length, withSni.length);
});

test('every truncation of a real hello is incomplete, with a truthful lower bound', () => {
  for (const bytes of [withSni, withoutSni, tls12]) {
    for (let i = 0; i < bytes.length; i++) {
      const r = parseClientHello(bytes.subarray(0, i));
      assert.equal(r.status, 'incomplete', `prefix ${i}: ${JSON.stringify(r)}`);
      if (r.status !== 'incomplete') continue;
      assert.ok(r.needed !== undefined && r.needed >= 1 && r.needed <= bytes.length - i, `prefix ${i}: needed ${r.needed}`);
    }
  }
});

test('the reader: one byte at a time gives the same answer, then sticks', () => {
  const reader = createClientHelloReader();
  for (let i = 0; i < withSni.length - 1; i++) {
    const r = reader.push(withSni.subarray(i, i + 1));
    assert.equal(r.status, 'incomplete', `byte ${i}`);
    if (r.status === 'incomplete') assert.ok(r.needed !== undefined && r.needed >= 1 && r.needed <= withSni.length - i - 1);
  }
  const last = reader.push(withSni.subarray(withSni.length - 1));
  assert.deepEqual(last, parseClientHello(withSni));
  assert.deepEqual(reader.buffered, withSni);
  assert.equal(reader.push(Buffer.from('more')), last, 'final answers stick');
  assert.equal(reader.buffered.length, withSni.length, 'nothing buffered after the answer');
});

test('the reader refuses at once what is not TLS, and a bad hello before it ends', () => {
  const http = createClientHelloReader();
  assertInvalid(http.push(Buffer.from('G')), 'not TLS');
  assert.deepEqual(http.buffered, Buffer.from('G'));
  const bytes = hello({ extensions: extensions(sniExt('bad_name.example.test'), ext(21, Buffer.alloc(2000))) });
  const reader = createClientHelloReader();
  let r: ClientHelloResult = { status: 'incomplete' };
  for (let i = 0; i < bytes.length && r.status === 'incomplete'; i++) r = reader.push(bytes.subarray(i, i + 1));
  assertInvalid(r, 'bad host_name');
  assert.ok(reader.buffered.length < 200, `refused after ${reader.buffered.length} bytes`);
});

test('the reader stays cheap when a peer drips a large hello one byte at a time', () => {
  // 4 000 empty extensions: the most work per byte for the parser. Re-parsing the whole buffer
  // for every byte took ~1.3 s here; the reader's rescan step keeps it to a few milliseconds.
  const many = Array.from({ length: 4000 }, (_, i) => ext(0x100 + i, Buffer.alloc(0)));
  const bytes = hello({ extensions: extensions(sniExt('drip.example.test'), ...many) });
  assert.ok(bytes.length > 16_000);
  const reader = createClientHelloReader();
  const started = performance.now();
  let r: ClientHelloResult = { status: 'incomplete' };
  for (let i = 0; i < bytes.length; i++) r = reader.push(bytes.subarray(i, i + 1));
  const elapsed = performance.now() - started;
  assertOk(r);
  assert.equal(r.hello.serverName, 'drip.example.test');
  assert.ok(elapsed < 300, `${elapsed.toFixed(0)} ms`);
});

test('the reader keeps early data that arrives with the hello, for forwarding', () => {
  const early = Buffer.from([23, 3, 3, 0, 2, 9, 9]);
  const reader = createClientHelloReader();
  assert.equal(reader.push(withSni.subarray(0, 100)).status, 'incomplete');
  const r = reader.push(Buffer.concat([withSni.subarray(100), early]));
  assertOk(r);
  assert.equal(r.hello.length, withSni.length);
  assert.deepEqual(reader.buffered, Buffer.concat([withSni, early]));
});

test('a hello re-fragmented across records parses the same, and its prefixes stay incomplete', () => {
  const hs = handshakeOf(withSni);
  const expected = parseClientHello(withSni);
  assertOk(expected);
  const layouts = [[1, 1, 1], [2], [3, 1], [4], [5, 100], [100, 100, 100], Array(hs.length).fill(1)];
  for (let k = 1; k < hs.length; k += 7) layouts.push([k]);
  for (const sizes of layouts) {
    const bytes = records(hs, sizes);
    const r = parseClientHello(bytes);
    assertOk(r);
    assert.deepEqual(r.hello, { ...expected.hello, length: bytes.length }, `layout ${sizes.slice(0, 4).join(',')}`);
  }
  const threeRecords = records(hs, [3, 150]);
  for (let i = 0; i < threeRecords.length; i++) {
    assert.equal(parseClientHello(threeRecords.subarray(0, i)).status, 'incomplete', `prefix ${i}`);
  }
});

// --- Not TLS, or not a ClientHello ---------------------------------------------------------------
test('plain HTTP, SSH and other protocols are refused at the first byte', () => {
  assertInvalid(parseClientHello(Buffer.from('G')), 'not TLS');
  assertInvalid(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'not TLS');
  assertInvalid(parseClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')), 'not TLS');
  assertInvalid(parseClientHello(Buffer.from([0])), 'not TLS');
  assert.deepEqual(parseClientHello(Buffer.alloc(0)), { status: 'incomplete', needed: 50 });
});

test('SSLv2-style hellos and other record types are refused', () => {
  assertInvalid(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])), 'SSLv2 record');
  for (const type of [20, 21, 23, 24]) {
    assertInvalid(parseClientHello(Buffer.from([type, 3, 3, 0, 2, 2, 40])), 'not a handshake record', `type ${type}`);
  }
  for (const version of [[2, 0], [3, 0], [3, 4], [0x7f, 0x1c]]) {
    assertInvalid(parseClientHello(Buffer.from([22, ...version])), 'bad record version', version.join('.'));
  }
  assertInvalid(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), 'bad record length');
  assertInvalid(parseClientHello(Buffer.from([22, 3, 1, 0x40, 0x01])), 'bad record length');
  // A ServerHello (type 2) is not what a relay expects from a visitor.
  assertInvalid(parseClientHello(Buffer.from([22, 3, 3, 0, 60, 2])), 'not a ClientHello');
  // Declared too short to hold any ClientHello: refused before its bytes arrive.
  assertInvalid(parseClientHello(Buffer.from([22, 3, 1, 0, 44, 1, 0, 0, 40])), 'bad handshake length');
});

test('a record of another type inside a fragmented hello, or bytes past it, are refused', () => {
  const hs = handshakeOf(withSni);
  const first = records(hs.subarray(0, 50));
  assertInvalid(parseClientHello(Buffer.concat([first, Buffer.from([23, 3, 3, 0, 1, 0])])), 'interleaved record');
  // The hello plus one byte in the same record.
  assertInvalid(parseClientHello(records(Buffer.concat([hs, u8(0)]))), 'trailing data');
  // A second record that carries more than the rest of the hello.
  const rest = Buffer.concat([hs.subarray(50), u8(0)]);
  assertInvalid(parseClientHello(Buffer.concat([first, records(rest)])), 'trailing data');
});

test('oversize hellos are refused as soon as their lengths say so', () => {
  // Real hello, limit one byte short: too large; exactly enough: ok.
  assertInvalid(parseClientHello(withSni, withSni.length - 1), 'too large');
  assertOk(parseClientHello(withSni, withSni.length));
  // A handshake declaring 20 000 bytes needs two records: refused from its first 9 bytes.
  const head = Buffer.from([22, 3, 1, 0x40, 0x00, 1, ...u24(20_000)]);
  assertInvalid(parseClientHello(head), 'too large');
  assert.equal(parseClientHello(head, 32 * 1024).status, 'incomplete');
  // A legitimately fragmented hello that fits its records only past the default limit.
  const padded = clientHello({ extensions: extensions(sniExt('a.test'), ext(21, Buffer.alloc(16_500))) });
  const bytes = records(padded, [16_384]);
  assertInvalid(parseClientHello(bytes.subarray(0, 10)), 'too large');
  assertOk(parseClientHello(bytes, bytes.length));
  // Through the reader: never incomplete once maxBytes are buffered.
  const reader = createClientHelloReader(200);
  let r: ClientHelloResult = { status: 'incomplete' };
  for (let i = 0; i < withSni.length && r.status === 'incomplete'; i += 64) r = reader.push(withSni.subarray(i, i + 64));
  assertInvalid(r, 'too large');
  assert.ok(reader.buffered.length <= 256);
});

// --- Malformed ClientHellos ---------------------------------------------------------------------
test('the builder makes a valid hello, with or without extensions', () => {
  assert.deepEqual(parseClientHello(hello()), {
    status: 'ok',
    hello: { serverName: 'desk.example.test', alpn: ['h2'], tls13: true, legacyVersion: 0x0303, length: hello().length },
  });
  // A very old client: no extensions block at all.
  const old = hello({ extensions: null, version: 0x0301 });
  assert.deepEqual(parseClientHello(old), {
    status: 'ok',
    hello: { serverName: undefined, alpn: [], tls13: false, legacyVersion: 0x0301, length: old.length },
  });
  // A TLS 1.2 client sending only renegotiation_info (5 bytes of extensions, < RFC 8446's 8).
  assertOk(parseClientHello(hello({ extensions: extensions(ext(0xff01, u8(0))) })));
  assertOk(parseClientHello(hello({ extensions: extensions() })));
});

test('fields whose lengths overflow their container, or leave bytes over, are refused', () => {
  const cases: [string, Parts, string][] = [
    ['legacy_version 0x0300', { version: 0x0300 }, 'bad legacy_version'],
    ['legacy_version 0x0304', { version: 0x0304 }, 'bad legacy_version'],
    ['session id of 33', { sessionId: vec8(Buffer.alloc(33)) }, 'bad legacy_session_id'],
    ['session id past the end', { sessionId: Buffer.from([200]), extensions: null }, 'bad legacy_session_id'],
    ['no cipher suites', { suites: vec16() }, 'bad cipher_suites'],
    ['odd cipher_suites', { suites: vec16(u16(0x1301), u8(1)) }, 'bad cipher_suites'],
    ['cipher_suites past the end', { suites: Buffer.concat([u16(0x4000), u16(0x1301)]) }, 'bad cipher_suites'],
    ['no compression method', { compression: vec8() }, 'bad legacy_compression_methods'],
    ['extensions past the end', { extensions: Buffer.concat([u16(100), sniExt('a.test')]) }, 'bad extensions'],
    ['extensions short of the end', { extensions: Buffer.concat([u16(2), sniExt('a.test')]) }, 'bad extensions'],
    ['one stray byte after compression', { extensions: u8(0) }, 'bad extensions'],
    ['extension data past its block', { extensions: vec16(u16(0), u16(500), Buffer.alloc(10)) }, 'bad extensions'],
    ['three bytes where an extension must be', { extensions: vec16(versionsExt, Buffer.from([0, 1, 2])) }, 'bad extensions'],
    ['duplicate SNI', { extensions: extensions(sniExt('a.test'), sniExt('b.test')) }, 'duplicate extension'],
    ['duplicate ALPN', { extensions: extensions(alpnExt('h2'), versionsExt, alpnExt('h2')) }, 'duplicate extension'],
    ['duplicate unknown type', { extensions: extensions(ext(0x7777, u8(0)), ext(0x7777, u8(0))) }, 'duplicate extension'],
    ['empty server_name data', { extensions: extensions(ext(0, Buffer.alloc(0))) }, 'bad server_name'],
    ['empty ServerNameList', { extensions: extensions(ext(0, vec16())) }, 'bad server_name'],
    ['ServerNameList past its extension', { extensions: extensions(ext(0, Buffer.concat([u16(40), u8(0), vec16(Buffer.from('a.test'))]))) }, 'bad server_name'],
    ['ServerNameList short of its extension', { extensions: extensions(ext(0, Buffer.concat([vec16(u8(0), vec16(Buffer.from('a.test'))), u8(0)]))) }, 'bad server_name'],
    ['HostName past its list', { extensions: extensions(ext(0, vec16(u8(0), u16(40), Buffer.from('a.test')))) }, 'bad host_name'],
    ['empty HostName', { extensions: extensions(ext(0, vec16(u8(0), vec16()))) }, 'bad host_name'],
    ['name_type 1', { extensions: extensions(sniExt('a.test', 1)) }, 'bad server_name type'],
    ['two host_names', { extensions: extensions(ext(0, vec16(u8(0), vec16(Buffer.from('a.test')), u8(0), vec16(Buffer.from('b.test'))))) }, 'bad server_name'],
    ['empty ALPN list', { extensions: extensions(ext(16, vec16())) }, 'bad ALPN'],
    ['empty ALPN name', { extensions: extensions(ext(16, vec16(vec8()))) }, 'bad ALPN'],
    ['ALPN name past its list', { extensions: extensions(ext(16, vec16(u8(9), Buffer.from('h2')))) }, 'bad ALPN'],
    ['ALPN list short of its extension', { extensions: extensions(ext(16, Buffer.concat([vec16(vec8(Buffer.from('h2'))), u8(0)]))) }, 'bad ALPN'],
    ['odd supported_versions', { extensions: extensions(ext(43, vec8(u16(0x0304), u8(3)))) }, 'bad supported_versions'],
    ['empty supported_versions', { extensions: extensions(ext(43, vec8())) }, 'bad supported_versions'],
  ];
  for (const [name, parts, reason] of cases) {
    const bytes = hello(parts);
    assertInvalid(parseClientHello(bytes), reason, name);
    // Refused as soon as the offending bytes are in, never "incomplete" on a doomed prefix.
    const first = firstDecisivePrefix(bytes);
    assertInvalid(parseClientHello(bytes.subarray(0, first)), reason, `${name}, prefix ${first}`);
  }
});

/** The shortest prefix of `bytes` that is not 'incomplete'. */
function firstDecisivePrefix(bytes: Buffer): number {
  for (let i = 0; i <= bytes.length; i++) if (parseClientHello(bytes.subarray(0, i)).status !== 'incomplete') return i;
  return bytes.length;
}

test('host_name must be a plausible DNS name; one trailing dot is dropped', () => {
  const good: [string, string][] = [
    ['Example.TEST', 'example.test'],
    ['example.test.', 'example.test'],
    ['localhost', 'localhost'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a'.repeat(63) + '.test', 'a'.repeat(63) + '.test'],
    [`${'abcdefghi.'.repeat(25)}abc`, `${'abcdefghi.'.repeat(25)}abc`], // 253
    [`${'abcdefghi.'.repeat(25)}abc.`, `${'abcdefghi.'.repeat(25)}abc`],
  ];
  for (const [name, expected] of good) {
    const r = parseClientHello(hello({ extensions: extensions(sniExt(name)) }));
    assertOk(r);
    assert.equal(r.hello.serverName, expected, name);
  }
  const bad: (string | Buffer)[] = [
    'exa_mple.test',
    'a b.test',
    'bücher.test',
    'a..b',
    '.a.test',
    'a.test..',
    '.',
    'a\0.test',
    'a/b',
    '*.example.test',
    '127.0.0.1:443',
    `${'a'.repeat(64)}.test`,
    `${'abcdefghi.'.repeat(25)}abcd`, // 254
    Buffer.from([0x61, 0xff, 0x62]),
  ];
  for (const name of bad) {
    const bytes = hello({ extensions: extensions(sniExt(name)) });
    assertInvalid(parseClientHello(bytes), 'bad host_name', String(name));
  }
  // A bad character decides at once, before the rest of the name arrives.
  const bytes = hello({ extensions: extensions(sniExt('good.bad_name.example.test')) });
  const at = bytes.indexOf('_');
  assertInvalid(parseClientHello(bytes.subarray(0, at + 1)), 'bad host_name');
  assert.equal(parseClientHello(bytes.subarray(0, at)).status, 'incomplete');
  // Also when the record carrying it is complete and the next record has not begun.
  const split = records(handshakeOf(bytes), [at - 5 + 1]);
  assertInvalid(parseClientHello(split.subarray(0, at + 1)), 'bad host_name');
  assertInvalid(parseClientHello(split), 'bad host_name');
});

test('ALPN names are opaque bytes, kept distinct (latin1), and unknown extensions are skipped', () => {
  const r = parseClientHello(hello({ extensions: extensions(ext(0x1a1a, Buffer.alloc(3)), alpnExt('x'), ext(0xff01, u8(0))) }));
  assertOk(r);
  assert.deepEqual(r.hello.alpn, ['x']);
  const raw = parseClientHello(hello({ extensions: extensions(ext(16, vec16(vec8(Buffer.from([0xc3, 0xa9])), vec8(Buffer.from([0xe9]))))) }));
  assertOk(raw);
  assert.deepEqual(raw.hello.alpn, ['\u00c3\u00a9', '\u00e9']);
});

test('tls13 needs both supported_versions with 0x0304 and legacy_version 0x0303', () => {
  const only12 = parseClientHello(hello({ extensions: extensions(ext(43, vec8(u16(0x0303)))) }));
  assertOk(only12);
  assert.equal(only12.hello.tls13, false);
  const oldLegacy = parseClientHello(hello({ version: 0x0301, extensions: extensions(versionsExt) }));
  assertOk(oldLegacy);
  assert.equal(oldLegacy.hello.tls13, false);
});

// --- Alerts and options -------------------------------------------------------------------------
test('tlsAlert builds a plaintext alert record', () => {
  assert.deepEqual([...tlsAlert(TLS_ALERT.unrecognizedName)], [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112]);
  assert.deepEqual([...tlsAlert(40)], [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40]);
  assert.deepEqual([...tlsAlert(TLS_ALERT.closeNotify)], [0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0]);
  for (const bad of [-1, 256, 1.5, Number.NaN]) {
    assert.throws(() => tlsAlert(bad), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  }
});

test('maxBytes must be an integer that can hold a ClientHello', () => {
  assert.equal(DEFAULT_MAX_CLIENT_HELLO_BYTES, 16_384 + 5);
  for (const bad of [0, 49, 100.5, Number.POSITIVE_INFINITY, Number.NaN]) {
    assert.throws(() => parseClientHello(withSni, bad), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
    assert.throws(() => createClientHelloReader(bad), (err) => isPortholeError(err, 'INVALID_ARGUMENT'));
  }
  assert.equal(parseClientHello(Buffer.alloc(0), 50).status, 'incomplete');
});
