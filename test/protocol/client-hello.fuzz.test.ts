// Fuzz test for src/protocol/client-hello.ts: real ClientHellos from Node's TLS client, mutated
// by a seeded PRNG (bit flips, byte inserts and deletes, length-field tweaks, truncation,
// splices, garbage). The parser faces these bytes from anyone on the internet, so it must never
// throw, always answer with one of its three statuses, and keep its promises about lengths.
// Reproduce a failure with PORTHOLE_FUZZ_SEED=<seed>; PORTHOLE_FUZZ_ITERATIONS scales the run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ClientHelloResult,
  createClientHelloReader,
  DEFAULT_MAX_CLIENT_HELLO_BYTES,
  parseClientHello,
} from '../../src/protocol/client-hello.js';
import { captureHello } from '../helpers/client-hello.js';

const SEED = Number(process.env['PORTHOLE_FUZZ_SEED'] ?? 0x5eed_c1e1);
const ITERATIONS = Number(process.env['PORTHOLE_FUZZ_ITERATIONS'] ?? 200_000);

/** mulberry32: a tiny, well-mixed 32-bit PRNG; the same seed gives the same run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same handshake message re-cut into records of `size` bytes. */
function refragment(record: Buffer, size: number): Buffer {
  const hs = record.subarray(5);
  const out: Buffer[] = [];
  for (let at = 0; at < hs.length; at += size) {
    const fragment = hs.subarray(at, at + size);
    out.push(Buffer.from([22, 3, 1, fragment.length >> 8, fragment.length & 255]), fragment);
  }
  return Buffer.concat(out);
}

const real = [
  await captureHello({ servername: 'Desk-1.Tunnel.Example.Test', ALPNProtocols: ['porthole/1', 'h2', 'http/1.1'] }),
  await captureHello({}),
  await captureHello({ servername: 'legacy.example.test', maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }),
];
const seeds = [...real, refragment(real[0]!, 97), refragment(real[1]!, 3)];

type Mutation = (b: Buffer, rnd: () => number) => Buffer;
const at = (b: Buffer, rnd: () => number): number => Math.floor(rnd() * (b.length + 1));
const byte = (rnd: () => number): number => Math.floor(rnd() * 256);
const INTERESTING = [0, 1, 2, 0x16, 0x2e, 0x7f, 0x80, 0xfe, 0xff];

const mutations: Mutation[] = [
  // Bit flips.
  (b, rnd) => {
    const out = Buffer.from(b);
    for (let n = 1 + Math.floor(rnd() * 4); n > 0 && out.length > 0; n--) out[at(out, rnd) % out.length]! ^= 1 << Math.floor(rnd() * 8);
    return out;
  },
  // A byte set to a boundary value.
  (b, rnd) => {
    const out = Buffer.from(b);
    if (out.length > 0) out[at(out, rnd) % out.length] = INTERESTING[Math.floor(rnd() * INTERESTING.length)]!;
    return out;
  },
  // Insert random bytes.
  (b, rnd) => {
    const i = at(b, rnd);
    const extra = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => byte(rnd)));
    return Buffer.concat([b.subarray(0, i), extra, b.subarray(i)]);
  },
  // Delete a run of bytes.
  (b, rnd) => {
    const i = at(b, rnd);
    return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + Math.floor(rnd() * 8))]);
  },
  // Tweak a 16- or 24-bit big-endian field: the record and handshake lengths half the time.
  (b, rnd) => {
    const out = Buffer.from(b);
    const wide = rnd() < 0.3;
    const width = wide ? 3 : 2;
    if (out.length < width) return out;
    const i = rnd() < 0.5 ? (wide ? 6 : 3) : Math.floor(rnd() * (out.length - width + 1));
    if (i + width > out.length) return out;
    const old = wide ? out.readUIntBE(i, 3) : out.readUInt16BE(i);
    const deltas = [1, -1, 2, -2, 4, -4, 256, -256, 0x10000];
    const choice = rnd();
    const max = wide ? 0xffffff : 0xffff;
    const next = choice < 0.15 ? 0 : choice < 0.3 ? max : old + deltas[Math.floor(rnd() * deltas.length)]!;
    out.writeUIntBE(((next % (max + 1)) + max + 1) % (max + 1), i, width);
    return out;
  },
  // Truncate.
  (b, rnd) => b.subarray(0, at(b, rnd)),
  // Duplicate a slice elsewhere (repeats extensions, list entries, records).
  (b, rnd) => {
    const i = at(b, rnd);
    const slice = b.subarray(i, i + 1 + Math.floor(rnd() * 40));
    const j = at(b, rnd);
    return Buffer.concat([b.subarray(0, j), slice, b.subarray(j)]);
  },
  // Splice two hellos.
  (b, rnd) => {
    const other = seeds[Math.floor(rnd() * seeds.length)]!;
    return Buffer.concat([b.subarray(0, at(b, rnd)), other.subarray(at(other, rnd))]);
  },
  // Garbage, sometimes behind a plausible record header.
  (_b, rnd) => {
    const garbage = Buffer.from(Array.from({ length: Math.floor(rnd() * 600) }, () => byte(rnd)));
    if (rnd() < 0.5 && garbage.length >= 9) garbage.set([22, 3, 1 + Math.floor(rnd() * 3), garbage.length >> 8, (garbage.length - 5) & 255, 1]);
    return garbage;
  },
];

const STATUSES = new Set(['ok', 'incomplete', 'invalid']);

function check(input: Buffer, maxBytes: number, r: ClientHelloResult): void {
  assert.ok(STATUSES.has(r.status), `status ${String(r.status)}`);
  if (r.status === 'ok') {
    assert.ok(r.hello.length <= input.length && r.hello.length <= maxBytes, `ok length ${r.hello.length}`);
    const name = r.hello.serverName;
    const plausible = (n: string): boolean => /^[a-z0-9.-]{1,253}$/.test(n) && n.split('.').every((l) => l.length >= 1 && l.length <= 63);
    assert.ok(name === undefined || plausible(name), `serverName ${name}`);
    assert.ok(Array.isArray(r.hello.alpn) && r.hello.alpn.every((p) => typeof p === 'string' && p.length > 0));
  } else if (r.status === 'incomplete') {
    assert.ok(input.length < maxBytes, `incomplete at ${input.length} bytes with maxBytes ${maxBytes}`);
    assert.ok(r.needed === undefined || (Number.isInteger(r.needed) && r.needed >= 1), `needed ${r.needed}`);
  } else {
    assert.equal(typeof r.reason, 'string');
  }
}

test(`fuzz: ${ITERATIONS} mutated ClientHellos never throw and keep the parser's promises`, () => {
  const rnd = mulberry32(SEED);
  const counts = { ok: 0, incomplete: 0, invalid: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    let input = seeds[Math.floor(rnd() * seeds.length)]!;
    for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) input = mutations[Math.floor(rnd() * mutations.length)]!(input, rnd);
    const maxBytes = rnd() < 0.25 ? 50 + Math.floor(rnd() * (input.length + 20)) : DEFAULT_MAX_CLIENT_HELLO_BYTES;
    try {
      const r = parseClientHello(input, maxBytes);
      check(input, maxBytes, r);
      counts[r.status]++;
      if (r.status === 'ok') {
        // Exactly the hello's bytes give the same answer, and any shorter prefix waits for more.
        assert.deepEqual(parseClientHello(input.subarray(0, r.hello.length), maxBytes), r);
        const cut = Math.floor(rnd() * r.hello.length);
        assert.equal(parseClientHello(input.subarray(0, cut), maxBytes).status, 'incomplete', `prefix ${cut}`);
      }
      if (i % 32 === 0) {
        // The reader, fed random chunks, settles on what the parser says of the bytes so far; it
        // may defer an 'invalid' verdict (its rescan step), never an 'ok' one.
        const reader = createClientHelloReader(maxBytes);
        let last: ClientHelloResult;
        let o = 0;
        do {
          const size = 1 + Math.floor(rnd() * 64);
          last = reader.push(input.subarray(o, o + size));
          o += size;
        } while (o < input.length && last.status === 'incomplete');
        check(reader.buffered, maxBytes, last);
        const direct = parseClientHello(reader.buffered, maxBytes);
        if (last.status === 'incomplete') assert.notEqual(direct.status, 'ok');
        else assert.deepEqual(last, direct);
        // An answer, once given, holds for all the bytes: invalid stays invalid, ok stays the same.
        if (last.status !== 'incomplete') assert.deepEqual(r.status === 'ok' ? r : r.status, last.status === 'ok' ? last : 'invalid');
      }
    } catch (err) {
      const detail = `seed ${SEED}, iteration ${i}, maxBytes ${maxBytes}, input ${input.toString('hex')}`;
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${detail}`, { cause: err });
    }
  }
  // The mutations must reach every outcome, or the run proves little.
  for (const [status, n] of Object.entries(counts)) assert.ok(n > ITERATIONS / 100, `${status}: only ${n}`);
});
