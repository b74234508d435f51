// The mux frame codec: every frame type round-trips whatever the chunking, each header
// violation is reported (never thrown), and random bytes never make the decoder throw —
// they decode the same way however they are split.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  type ControlFrame,
  type DecodeError,
  type DecoderLimits,
  encodeFin,
  encodeFrame,
  encodeGoAway,
  encodeOpen,
  encodePing,
  encodePong,
  encodeRst,
  encodeSettings,
  encodeWindow,
  FrameDecoder,
  FrameType,
  WIRE_CODES,
} from '../../src/protocol/mux/frames.js';

const LIMITS: DecoderLimits = { maxFrame: 1024, maxOpenMeta: 64 };

type Event = ControlFrame | { type: 'DATA'; id: number; length: number } | { type: 'piece'; id: number; bytes: Buffer<ArrayBufferLike> };

interface Decoded {
  events: Event[];
  error: DecodeError | undefined;
}

/** Decodes `bytes` split at `cuts`, merging DATA pieces so results compare across splits. */
function decode(bytes: Buffer, cuts: number[] = [], limits = LIMITS): Decoded {
  const events: Event[] = [];
  const dec = new FrameDecoder(limits, {
    frame: (f) => events.push(f),
    dataHeader: (id, length) => events.push({ type: 'DATA', id, length }),
    data: (id, piece) => {
      const last = events.at(-1);
      if (last?.type === 'piece' && last.id === id) last.bytes = Buffer.concat([last.bytes, piece]);
      else events.push({ type: 'piece', id, bytes: Buffer.from(piece) });
    },
  });
  let error: DecodeError | undefined;
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const e = dec.push(bytes.subarray(at, cut));
    error ??= e;
    at = cut;
  }
  return { events, error };
}

const settings = { initialWindow: 65536, maxFrame: 1024, maxStreams: 8, maxOpenMeta: 64 };
const ping = Buffer.from('0102030405060708', 'hex');
const sample = Buffer.concat([
  encodeSettings(settings),
  encodeOpen(1, Buffer.from('{"addr":"203.0.113.7"}')),
  encodeFrame(FrameType.DATA, 1, Buffer.from('hello, world')),
  encodeFrame(FrameType.DATA, 1),
  encodeWindow(1, 4096),
  encodeFin(1),
  encodeRst(3, WIRE_CODES.CANCEL),
  encodePing(ping),
  encodePong(ping),
  encodeGoAway(7, WIRE_CODES.NO_ERROR),
]);

test('every frame type round-trips', () => {
  const { events, error } = decode(sample);
  assert.equal(error, undefined);
  assert.deepEqual(events, [
    { type: 'SETTINGS', settings: { version: 1, ...settings } },
    { type: 'OPEN', id: 1, meta: Buffer.from('{"addr":"203.0.113.7"}') },
    { type: 'DATA', id: 1, length: 12 },
    { type: 'piece', id: 1, bytes: Buffer.from('hello, world') },
    { type: 'DATA', id: 1, length: 0 },
    { type: 'WINDOW', id: 1, increment: 4096 },
    { type: 'FIN', id: 1 },
    { type: 'RST', id: 3, code: WIRE_CODES.CANCEL },
    { type: 'PING', opaque: ping },
    { type: 'PONG', opaque: ping },
    { type: 'GOAWAY', lastId: 7, code: 0 },
  ]);
});

test('the result does not depend on how the bytes are split', () => {
  const whole = decode(sample);
  for (let cut = 1; cut < sample.length; cut++) assert.deepEqual(decode(sample, [cut]), whole, `split at ${cut}`);
  const everyByte = Array.from({ length: sample.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(decode(sample, everyByte), whole);
});

test('DATA payload is handed on as views of the received chunk, not copies', () => {
  const frame = encodeFrame(FrameType.DATA, 5, Buffer.from('abcdef'));
  const pieces: Buffer[] = [];
  const dec = new FrameDecoder(LIMITS, { frame() {}, dataHeader() {}, data: (_id, p) => pieces.push(p) });
  assert.equal(dec.push(frame), undefined);
  assert.equal(pieces.length, 1);
  assert.equal(pieces[0]!.buffer, frame.buffer);
  assert.equal(pieces[0]!.toString(), 'abcdef');
});

const header = (type: number, id: number, length: number): Buffer => {
  const b = Buffer.alloc(10);
  b[0] = type;
  b.writeUInt32BE(id, 2);
  b.writeUInt32BE(length, 6);
  return b;
};

test('header and payload violations are reported as protocol errors', () => {
  const cases: [string, Buffer, RegExp, number?][] = [
    ['unknown type', header(9, 1, 0), /unknown frame type 9/],
    ['unknown type 255', header(255, 0, 0), /unknown frame type 255/],
    ['SETTINGS on a stream', header(FrameType.SETTINGS, 1, 20), /SETTINGS on stream 1/],
    ['PING on a stream', header(FrameType.PING, 2, 8), /PING on stream 2/],
    ['DATA on stream 0', header(FrameType.DATA, 0, 1), /DATA on stream 0/],
    ['OPEN on stream 0', header(FrameType.OPEN, 0, 0), /OPEN on stream 0/],
    ['DATA over maxFrame', header(FrameType.DATA, 1, 1025), /DATA payload of 1025 bytes/],
    ['OPEN over maxOpenMeta', header(FrameType.OPEN, 1, 65), /OPEN payload of 65 bytes/],
    ['huge length', header(FrameType.DATA, 1, 0xffffffff), /DATA payload of 4294967295/],
    ['WINDOW of 3 bytes', header(FrameType.WINDOW, 1, 3), /WINDOW payload of 3 bytes: expected 4/],
    ['FIN with payload', header(FrameType.FIN, 1, 1), /FIN payload of 1 bytes: expected 0/],
    ['PING of 7 bytes', header(FrameType.PING, 0, 7), /PING payload of 7/],
    ['GOAWAY of 4 bytes', header(FrameType.GOAWAY, 0, 4), /GOAWAY payload/],
    ['SETTINGS too long', header(FrameType.SETTINGS, 0, 257), /SETTINGS payload of 257/],
    ['WINDOW increment 0', encodeWindow(1, 0), /WINDOW increment 0/],
    ['WINDOW increment over 2^31-1', encodeWindow(1, 0x80000000), /WINDOW increment 2147483648/],
    ['SETTINGS of another version', encodeFrame(FrameType.SETTINGS, 0, Buffer.from([0, 0, 0, 2])), /mux version 2/],
    ['SETTINGS too short', encodeFrame(FrameType.SETTINGS, 0, Buffer.from([0, 0, 0, 1, 0, 0])), /expected 20/],
    ['SETTINGS window 0', encodeSettings({ ...settings, initialWindow: 0 }), /initialWindow 0/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const { error, events } = decode(bytes);
    assert.ok(error, `${name}: expected an error`);
    assert.match(error.message, pattern, name);
    assert.equal(error.wireCode, WIRE_CODES.PROTOCOL_ERROR, name);
    assert.deepEqual(events, [], name);
  }
});

test('after an error the decoder ignores everything that follows', () => {
  const { events, error } = decode(Buffer.concat([encodeFin(1), header(42, 1, 0), encodeFin(3)]));
  assert.match(error!.message, /unknown frame type 42/);
  assert.deepEqual(events, [{ type: 'FIN', id: 1 }]);
});

test('a hostile length is rejected before any payload is buffered', () => {
  // Only the 10 header bytes arrive; the decoder must fail now, not wait for 4 GiB.
  const { error } = decode(header(FrameType.OPEN, 1, 0x7fffffff), [], { maxFrame: 65536, maxOpenMeta: 4096 });
  assert.match(error!.message, /OPEN payload of 2147483647 bytes/);
});

function randomInt(n: number): number {
  return Math.floor(Math.random() * n);
}

/** Random input: pure noise, or valid frames with a few bytes flipped. */
function fuzzInput(): Buffer {
  if (Math.random() < 0.5) return randomBytes(randomInt(512));
  const frames: Buffer[] = [sample];
  for (let i = 0; i < randomInt(4); i++) frames.push(encodeFrame(FrameType.DATA, 1 + randomInt(9), randomBytes(randomInt(1100))));
  const bytes = Buffer.concat(frames);
  for (let i = 0; i < 1 + randomInt(4); i++) bytes[randomInt(bytes.length)] = randomInt(256);
  return bytes;
}

test('fuzz: random bytes never throw and decode identically however they are split', () => {
  let errors = 0;
  let frames = 0;
  for (let i = 0; i < 3000; i++) {
    const input = fuzzInput();
    const whole = decode(input);
    const cuts = Array.from({ length: randomInt(6) }, () => randomInt(input.length + 1)).sort((a, b) => a - b);
    assert.deepEqual(decode(input, cuts), whole, `input ${input.toString('hex')} cuts ${cuts}`);
    if (whole.error) {
      errors++;
      assert.equal(typeof whole.error.message, 'string');
      assert.ok(whole.error.wireCode === WIRE_CODES.PROTOCOL_ERROR);
    }
    frames += whole.events.length;
  }
  // The generator exercises both outcomes.
  assert.ok(errors > 100, `errors ${errors}`);
  assert.ok(frames > 1000, `frames ${frames}`);
});
