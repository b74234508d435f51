// The mux session over real TCP sockets on 127.0.0.1: streams, metadata, half-close, reset,
// stream limits, pings, dead links, GOAWAY and close — and hostile raw peers that break the
// protocol (over-window DATA, bad frames), which must close the session with a reason.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import {
  type ControlFrame,
  encodeFin,
  encodeFrame,
  encodeOpen,
  encodePing,
  encodeSettings,
  FrameDecoder,
  FrameType,
  WIRE_CODES,
} from '../../src/protocol/mux/frames.js';
import { createMuxSession, type MuxCloseReason, type MuxOptions, type MuxSession, type MuxStream } from '../../src/protocol/mux/index.js';
import { closeServer, listen } from '../helpers/servers.js';

interface Pair {
  relay: MuxSession;
  desk: MuxSession;
  relayClosed: Promise<MuxCloseReason>;
  deskClosed: Promise<MuxCloseReason>;
}

const closedPromise = (s: MuxSession): Promise<MuxCloseReason> => once(s, 'close').then(([r]) => r as MuxCloseReason);

/** Two sessions over one loopback TCP connection: relay (odd ids) dials, desk accepts. */
async function tcpPair(t: TestContext, relayOpts: Partial<MuxOptions> = {}, deskOpts: Partial<MuxOptions> = {}): Promise<Pair> {
  const server = net.createServer();
  const port = await listen(server);
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  const [[serverSocket]] = await Promise.all([accepted, once(client, 'connect')]);
  const relay = createMuxSession(client, { isOpener: true, ...relayOpts });
  const desk = createMuxSession(serverSocket as net.Socket, { isOpener: false, ...deskOpts });
  const pair = { relay, desk, relayClosed: closedPromise(relay), deskClosed: closedPromise(desk) };
  t.after(async () => {
    relay.close();
    desk.close();
    await Promise.all([pair.relayClosed, pair.deskClosed]);
    await closeServer(server);
  });
  return pair;
}

/** Frames a raw peer receives, as events ('frame' for each control frame). */
class Inbox extends EventEmitter {
  readonly frames: ControlFrame[] = [];
  readonly decoder = new FrameDecoder({ maxFrame: 1 << 24, maxOpenMeta: 1 << 20 }, {
    frame: (f) => {
      this.frames.push(f);
      this.emit('frame', f);
    },
    dataHeader() {},
    data() {},
  });

  /** Resolves with the next (or an already received) frame of this type. */
  async next<T extends ControlFrame['type']>(type: T): Promise<Extract<ControlFrame, { type: T }>> {
    const seen = this.frames.find((f) => f.type === type);
    if (seen) return seen as Extract<ControlFrame, { type: T }>;
    for (;;) {
      const [f] = (await once(this, 'frame')) as [ControlFrame];
      if (f.type === type) return f as Extract<ControlFrame, { type: T }>;
    }
  }
}

/** A session under test (the desk) facing a hand-driven raw socket that sends whatever the test writes. */
async function rawPeer(t: TestContext, opts: Partial<MuxOptions> = {}) {
  const server = net.createServer();
  const port = await listen(server);
  const accepted = once(server, 'connection');
  const raw = net.connect(port, '127.0.0.1');
  const [[serverSocket]] = await Promise.all([accepted, once(raw, 'connect')]);
  const session = createMuxSession(serverSocket as net.Socket, { isOpener: false, ...opts });
  const closed = closedPromise(session);
  const inbox = new Inbox();
  raw.on('data', (chunk: Buffer) => inbox.decoder.push(chunk));
  raw.on('error', () => {});
  t.after(async () => {
    session.close();
    raw.destroy();
    await closed;
    await closeServer(server);
  });
  return { session, raw, closed, inbox };
}

const peerSettings = encodeSettings({ initialWindow: 1 << 20, maxFrame: 1 << 16, maxStreams: 100, maxOpenMeta: 4096 });

/**
 * Reads a stream to its end without destroying it (for await would: it ends the stream's
 * writable side too, which on a mux stream means RST).
 */
function readAll(stream: MuxStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Resolves once the stream has closed (at once if it already has). */
function closedStream(stream: MuxStream): Promise<unknown> {
  return stream.closed ? Promise.resolve() : once(stream, 'close');
}

function errorOf(stream: MuxStream): Promise<Error> {
  return once(stream, 'error').then(([e]) => e as Error);
}

function codeOf(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

async function echo(s: MuxStream): Promise<void> {
  s.on('error', () => {});
  s.pipe(s);
}

test('open, echo, close: metadata arrives, bytes come back, both sides free the stream', async (t) => {
  const { relay, desk } = await tcpPair(t);
  const metas: string[] = [];
  desk.on('stream', (s, meta) => {
    metas.push(meta.toString());
    assert.equal(s.meta.toString(), meta.toString());
    echo(s);
  });
  const meta = JSON.stringify({ visitor: '203.0.113.7:51234', sni: 'desk.example.test' });
  const s = relay.openStream(Buffer.from(meta));
  assert.equal(s.id, 1);
  assert.equal(relay.streamCount, 1);
  s.end('hello through the tunnel');
  assert.equal((await readAll(s)).toString(), 'hello through the tunnel');
  await closedStream(s);
  assert.deepEqual(metas, [meta]);
  assert.equal(relay.streamCount, 0);
  assert.equal(desk.streamCount, 0);
  const s2 = relay.openStream(new Uint8Array(0));
  assert.equal(s2.id, 3, 'the relay opens odd ids');
  s2.end();
  assert.equal((await readAll(s2)).length, 0);
});

test('the desk may open streams too (even ids)', async (t) => {
  const { relay, desk } = await tcpPair(t);
  relay.on('stream', echo);
  const s = desk.openStream(Buffer.from('x'));
  assert.equal(s.id, 2);
  s.end('from the desk');
  assert.equal((await readAll(s)).toString(), 'from the desk');
});

test('half-close both ways: each direction ends on its own', async (t) => {
  const { relay, desk } = await tcpPair(t);
  // Request/response: the desk answers only after the relay's side ended.
  desk.once('stream', async (s) => {
    const req = await readAll(s);
    s.end(`got ${req.toString()}`);
  });
  const a = relay.openStream(Buffer.alloc(0));
  a.end('request');
  assert.equal((await readAll(a)).toString(), 'got request');

  // The other way round: the desk ends first, then keeps reading while the relay writes.
  const deskRead = new Promise<Buffer>((resolve) => {
    desk.once('stream', (s) => {
      s.end('early bye');
      resolve(readAll(s));
    });
  });
  const b = relay.openStream(Buffer.alloc(0));
  const ended = once(b, 'end');
  b.resume();
  await ended;
  assert.ok(b.writable, 'the relay can still write after the desk ended');
  b.write('still ');
  b.end('talking');
  assert.equal((await deskRead).toString(), 'still talking');
  await closedStream(b);
  assert.equal(desk.streamCount, 0);
});

test('destroy sends RST: the peer stream fails with TUNNEL_STREAM_RESET and the code', async (t) => {
  const { relay, desk } = await tcpPair(t);
  const deskStreams: MuxStream[] = [];
  desk.on('stream', (s) => deskStreams.push(s));
  for (const [how, code] of [
    ['destroy()', WIRE_CODES.CANCEL],
    ['destroy(err)', WIRE_CODES.INTERNAL_ERROR],
    ['reset(FLOW)', WIRE_CODES.FLOW_CONTROL_ERROR],
  ] as const) {
    const s = relay.openStream(Buffer.from(how));
    s.on('error', () => {});
    s.write('some bytes');
    const [peer] = (await once(desk, 'stream')) as [MuxStream];
    await once(peer, 'readable');
    const failed = errorOf(peer);
    if (how === 'destroy()') s.destroy();
    else if (how === 'destroy(err)') s.destroy(new Error('visitor socket failed'));
    else s.reset(code);
    const err = await failed;
    assert.ok(isPortholeError(err), how);
    assert.equal(codeOf(err), 'TUNNEL_STREAM_RESET', how);
    assert.equal(peer.rstCode, code, how);
    assert.equal(s.rstCode, code, how);
    await closedStream(peer);
  }
  assert.equal(relay.streamCount, 0);
  assert.equal(desk.streamCount, 0);
  assert.equal(deskStreams.length, 3);
});

test('a reset after FIN drops only the way back: the reader still gets every byte, then a clean end', async (t) => {
  // The relay's window holds the whole body, so the desk finishes while nothing was read yet.
  const { relay, desk } = await tcpPair(t, { initialWindow: 4 << 20 });
  const body = Buffer.alloc(3 << 20);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32BE(i, i);
  desk.on('stream', (s) => {
    // The desk's side of a finished response: everything sent, FIN, then the stream is torn
    // down (RST) without waiting for the relay's FIN — as a desk closing a TLS session does.
    s.end(body, () => s.destroy());
  });
  const s = relay.openStream(Buffer.from('download'));
  let errored: Error | undefined;
  s.on('error', (e) => (errored = e));
  // A slow reader: the data waits in the stream while the RST arrives.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(s.rstCode, WIRE_CODES.CANCEL, 'the reset has arrived');
  // Writes after the peer stopped reading are dropped, not stuck waiting for credit it will never give.
  await new Promise<void>((resolve, reject) => s.write(Buffer.alloc(1 << 20), (err?: Error | null) => (err ? reject(err) : resolve())));
  const got = await readAll(s);
  assert.equal(errored, undefined, 'no error: the data before the FIN is complete');
  assert.ok(got.equals(body), `all ${body.length} bytes delivered (got ${got.length})`);
  await closedStream(s);
});

test('a reset from the desk reaches the relay while it is still writing', async (t) => {
  const { relay, desk } = await tcpPair(t, {}, { initialWindow: 16 * 1024 });
  desk.on('stream', (s) => s.once('data', () => s.destroy()));
  const s = relay.openStream(Buffer.alloc(0));
  const failed = errorOf(s);
  s.write(Buffer.alloc(1 << 20)); // far beyond the window: the writer is waiting for credit
  const err = await failed;
  assert.equal(codeOf(err), 'TUNNEL_STREAM_RESET');
  assert.equal(s.rstCode, WIRE_CODES.CANCEL);
});

test('streams beyond the peer limit are refused; others continue', async (t) => {
  const { relay, desk } = await tcpPair(t, {}, { maxStreams: 2 });
  desk.on('stream', echo);
  await relay.ping(); // the desk's SETTINGS (and with it its limit) have arrived
  const a = relay.openStream(Buffer.alloc(0));
  const b = relay.openStream(Buffer.alloc(0));
  const c = relay.openStream(Buffer.alloc(0));
  const err = await errorOf(c);
  assert.equal(codeOf(err), 'TUNNEL_STREAM_REFUSED');
  a.end('a');
  b.end('b');
  assert.equal((await readAll(a)).toString(), 'a');
  assert.equal((await readAll(b)).toString(), 'b');
  await Promise.all([closedStream(a), closedStream(b)]);
  const d = relay.openStream(Buffer.alloc(0));
  d.end('d');
  assert.equal((await readAll(d)).toString(), 'd', 'a freed slot can be used again');
});

test('a peer ignoring the stream limit gets RST REFUSED_STREAM', async (t) => {
  const { session, raw, inbox } = await rawPeer(t, { maxStreams: 1 });
  session.on('stream', (s) => s.on('error', () => {}));
  raw.write(Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(0)), encodeOpen(3, Buffer.alloc(0))]));
  const rst = await inbox.next('RST');
  assert.deepEqual(rst, { type: 'RST', id: 3, code: WIRE_CODES.REFUSED_STREAM });
  assert.equal(session.streamCount, 1);
});

test('a stream nobody listens for is refused', async (t) => {
  const { raw, inbox } = await rawPeer(t);
  raw.write(Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(0))]));
  assert.deepEqual(await inbox.next('RST'), { type: 'RST', id: 1, code: WIRE_CODES.REFUSED_STREAM });
});

test('DATA beyond the advertised window closes the session with a protocol error', async (t) => {
  const window = 16 * 1024;
  const { session, raw, closed, inbox } = await rawPeer(t, { initialWindow: window, maxFrame: 16 * 1024 });
  const streamErr = new Promise<Error>((resolve) => session.on('stream', (s) => s.on('error', resolve)));
  // The whole window is allowed (and not read by anyone, so no credit comes back)…
  raw.write(Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(0)), encodeFrame(FrameType.DATA, 1, Buffer.alloc(window))]));
  // …one byte more is not.
  raw.write(encodeFrame(FrameType.DATA, 1, Buffer.alloc(1)));
  const reason = await closed;
  assert.equal(reason.code, 'PROTOCOL_ERROR');
  assert.match(reason.message, /DATA of 1 bytes on stream 1 exceeds its window \(0 bytes left\)/);
  const goaway = await inbox.next('GOAWAY');
  assert.equal(goaway.code, WIRE_CODES.FLOW_CONTROL_ERROR, 'the peer is told why');
  assert.equal(codeOf(await streamErr), 'TUNNEL_CLOSED');
});

test('protocol violations from a raw peer close the session with a reason', async (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['frame before SETTINGS', encodeOpen(1, Buffer.alloc(0)), /OPEN before SETTINGS/],
    ['unknown frame type', Buffer.concat([peerSettings, Buffer.from([0x7f, 0, 0, 0, 0, 1, 0, 0, 0, 0])]), /unknown frame type 127/],
    ['second SETTINGS', Buffer.concat([peerSettings, peerSettings]), /second SETTINGS/],
    ['OPEN with this side’s parity', Buffer.concat([peerSettings, encodeOpen(2, Buffer.alloc(0))]), /id parity belongs to this side/],
    ['OPEN ids going backwards', Buffer.concat([peerSettings, encodeOpen(5, Buffer.alloc(0)), encodeOpen(3, Buffer.alloc(0))]), /ids must increase/],
    ['DATA on a never-opened stream', Buffer.concat([peerSettings, encodeFrame(FrameType.DATA, 9, Buffer.from('x'))]), /stream 9, which was never opened/],
    ['DATA after FIN', Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(0)), encodeFin(1), encodeFrame(FrameType.DATA, 1, Buffer.from('x'))]), /after its FIN/],
    ['OPEN metadata over the limit', Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(4097))]), /OPEN payload of 4097 bytes/],
    ['DATA frame over maxFrame', Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(0)), encodeFrame(FrameType.DATA, 1, Buffer.alloc(65537))]), /DATA payload of 65537/],
  ];
  for (const [name, bytes, pattern] of cases) {
    await t.test(name, async (t) => {
      const { session, raw, closed, inbox } = await rawPeer(t);
      session.on('stream', (s) => s.on('error', () => {}));
      raw.write(bytes);
      const reason = await closed;
      assert.equal(reason.code, 'PROTOCOL_ERROR', name);
      assert.match(reason.message, pattern, name);
      assert.equal((await inbox.next('GOAWAY')).code, WIRE_CODES.PROTOCOL_ERROR, name);
    });
  }
});

test('frames for streams already closed are ignored, not errors', async (t) => {
  const { session, raw, inbox, closed } = await rawPeer(t);
  session.on('stream', (s) => {
    s.on('error', () => {});
    s.destroy(); // RST at once; the peer's frames that cross it must not fail the session
  });
  raw.write(Buffer.concat([peerSettings, encodeOpen(1, Buffer.alloc(0))]));
  await inbox.next('RST');
  raw.write(Buffer.concat([encodeFrame(FrameType.DATA, 1, Buffer.from('late')), encodeFin(1), encodePing(Buffer.alloc(8))]));
  await inbox.next('PONG');
  assert.equal(session.closeReason, undefined);
  session.close();
  assert.equal((await closed).code, 'CLOSED');
});

test('a consumer that never reads fills only its own window; other streams finish', async (t) => {
  const window = 64 * 1024;
  const { relay, desk } = await tcpPair(t, {}, { initialWindow: window });
  let stalled: MuxStream | undefined;
  desk.on('stream', (s, meta) => {
    if (meta.toString() === 'stalled') stalled = s; // never read
    else echo(s);
  });
  const stuck = relay.openStream(Buffer.from('stalled'));
  stuck.on('error', () => {});
  let stuckWritten = false;
  stuck.write(Buffer.alloc(4 << 20), () => {
    stuckWritten = true;
  });
  const payload = Buffer.alloc(2 << 20, 7);
  const others = Array.from({ length: 4 }, async () => {
    const s = relay.openStream(Buffer.from('echo'));
    s.end(payload);
    return readAll(s);
  });
  for (const body of await Promise.all(others)) assert.ok(body.equals(payload));
  assert.ok(stalled, 'the stalled stream was opened');
  assert.ok(stalled.readableLength <= window, `buffered ${stalled.readableLength} ≤ window ${window}`);
  assert.equal(stalled.readableLength, window, 'the peer used exactly its window');
  assert.equal(stuckWritten, false, 'the writer of the stalled stream is still waiting for credit');
  // Reading frees the window: the rest flows.
  const done = once(stalled, 'end');
  stalled.resume();
  stuck.end();
  await done;
  assert.ok(stuckWritten);
  stalled.end();
  stuck.resume();
  await closedStream(stuck);
});

test('window auto-tuning: a bulk stream read promptly grows to maxWindow; a slow reader stays at the initial window', async (t) => {
  // Small windows, so that one batch of the sender (256 KiB per event-loop turn) can use up
  // half a window even with both ends in this one process.
  const initialWindow = 16 * 1024;
  const maxWindow = 256 * 1024;
  const { relay, desk } = await tcpPair(t, {}, { initialWindow, maxWindow, windowBudget: maxWindow });
  const received = new Map<string, MuxStream>();
  const bodies = new Map<string, Promise<Buffer>>();
  desk.on('stream', (s, meta) => {
    const name = meta.toString();
    received.set(name, s);
    s.end(); // nothing to send back: each stream closes once its upload is read
    if (name === 'fast') bodies.set(name, readAll(s));
    else {
      // A reader slower than the sender: 1 KiB every 2 ms, so its buffer stays full.
      const chunks: Buffer[] = [];
      bodies.set(name, new Promise((resolve) => {
        const timer = setInterval(() => {
          const c: Buffer | null = s.read(1024) ?? s.read();
          if (c !== null) chunks.push(c);
        }, 2);
        s.once('end', () => {
          clearInterval(timer);
          resolve(Buffer.concat(chunks));
        });
      }));
    }
  });
  const fastBody = Buffer.alloc(8 << 20, 1);
  const slowBody = Buffer.alloc(128 * 1024, 2);
  const fast = relay.openStream(Buffer.from('fast'));
  const slow = relay.openStream(Buffer.from('slow'));
  fast.end(fastBody);
  slow.end(slowBody);
  for (const s of [fast, slow]) s.resume();
  await Promise.all([once(fast, 'finish'), once(slow, 'finish')]);
  await new Promise((r) => setImmediate(r));
  assert.ok((await bodies.get('fast')!).equals(fastBody));
  assert.ok((await bodies.get('slow')!).equals(slowBody));
  assert.equal(received.get('fast')!.window, maxWindow, 'the prompt reader\'s window grew to maxWindow');
  assert.equal(received.get('slow')!.window, initialWindow, 'the slow reader\'s window never grew');
  await Promise.all([closedStream(fast), closedStream(slow)]);
});

test('window auto-tuning: no growth on a path slower than the window (nothing queues in front of the link)', async (t) => {
  // relay → throttling proxy (~2 MB/s, as a slow uplink) → desk: the desk reads promptly, but
  // the data never arrives faster than it is granted back, so the window stays as it was.
  const deskServer = net.createServer();
  const deskPort = await listen(deskServer);
  const proxy = net.createServer((from) => {
    const to = net.connect({ port: deskPort, host: '127.0.0.1', noDelay: true });
    to.pipe(from);
    // Paced like a slow uplink: 1 KiB per millisecond (~1 MB/s), so the desk sees small
    // pieces, never a window's worth at once.
    let queued = Buffer.alloc(0);
    const pace = setInterval(() => {
      if (queued.length === 0) return;
      to.write(queued.subarray(0, 1024));
      queued = queued.subarray(1024);
      if (queued.length < 16 * 1024) from.resume();
    }, 1);
    from.on('data', (chunk: Buffer) => {
      queued = Buffer.concat([queued, chunk]);
      if (queued.length >= 64 * 1024) from.pause();
    });
    const stop = () => clearInterval(pace);
    for (const sock of [from, to]) {
      sock.on('error', () => {});
      sock.on('close', stop);
    }
  });
  const proxyPort = await listen(proxy);
  const accepted = once(deskServer, 'connection');
  const client = net.connect(proxyPort, '127.0.0.1');
  const [[serverSocket]] = await Promise.all([accepted, once(client, 'connect')]);
  const initialWindow = 16 * 1024;
  const relay = createMuxSession(client, { isOpener: true });
  const desk = createMuxSession(serverSocket as net.Socket, { isOpener: false, initialWindow, maxWindow: 256 * 1024 });
  t.after(async () => {
    relay.close();
    desk.close();
    await closeServer(proxy);
    await closeServer(deskServer);
  });
  const got = new Promise<{ s: MuxStream; body: Buffer }>((resolve) => desk.once('stream', (s: MuxStream) => void readAll(s).then((body) => resolve({ s, body }))));
  const body = Buffer.alloc(256 * 1024, 9);
  const s = relay.openStream(Buffer.from('slow-path'));
  s.on('error', () => {});
  s.end(body);
  const r = await got;
  assert.ok(r.body.equals(body));
  assert.equal(r.s.window, initialWindow, 'a path-limited stream keeps its window');
});

test('window auto-tuning stays within the session budget, which closing streams return', async (t) => {
  const initialWindow = 16 * 1024;
  const { relay, desk } = await tcpPair(t, {}, { initialWindow, maxWindow: 256 * 1024, windowBudget: 64 * 1024 });
  const size = 4 << 20;
  /** Opens n streams at once and sends `size` bytes on each, all read promptly; resolves with the desk's streams, still open. */
  const bulk = async (n: number) => {
    const sent: MuxStream[] = [];
    const arrived = new Promise<MuxStream[]>((resolve) => {
      const got: MuxStream[] = [];
      let full = 0;
      const onStream = (s: MuxStream) => {
        got.push(s);
        s.on('error', () => {}); // the relay resets them at the end
        let bytes = 0;
        s.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes === size && ++full === n) {
            desk.off('stream', onStream);
            resolve(got);
          }
        });
      };
      desk.on('stream', onStream);
    });
    for (let i = 0; i < n; i++) {
      const s = relay.openStream(Buffer.from('bulk'));
      s.on('error', () => {});
      s.write(Buffer.alloc(size, i));
      sent.push(s);
    }
    return { sent, received: await arrived };
  };
  const first = await bulk(3);
  const growth = first.received.reduce((sum, s) => sum + s.window - initialWindow, 0);
  assert.ok(growth > 0, 'the streams grew');
  assert.ok(growth <= 64 * 1024, `growth ${growth} of three open streams within the 64 KiB budget`);
  // Closing them returns the budget: a new bulk stream grows as far as the whole budget allows.
  for (const s of first.sent) s.destroy();
  const gone = (s: MuxStream) => (s.closed ? Promise.resolve() : new Promise((r) => s.once('close', r)));
  await Promise.all(first.received.map(gone));
  const second = await bulk(1);
  assert.equal(second.received[0]!.window, initialWindow + 64 * 1024, 'the whole budget was available again');
  for (const s of second.sent) s.destroy();
  await gone(second.received[0]!);
});

test('ping resolves with the round-trip time', async (t) => {
  const { relay, desk } = await tcpPair(t);
  const rtts = await Promise.all([relay.ping(), relay.ping(), desk.ping()]);
  for (const rtt of rtts) assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
});

test('an idle link stays up: pings keep both sides alive', async (t) => {
  const liveness = { pingIntervalMs: 50, deadAfterMs: 400 };
  const { relay, desk } = await tcpPair(t, liveness, liveness);
  // Four dead-link periods with no traffic but pings (waiting here is the point of the test).
  await new Promise((resolve) => setTimeout(resolve, 1600));
  assert.equal(relay.closeReason, undefined);
  assert.equal(desk.closeReason, undefined);
});

test('a frozen peer is detected as a dead link within deadAfterMs', async (t) => {
  const { raw, closed, inbox } = await rawPeer(t, { pingIntervalMs: 100, deadAfterMs: 400 });
  raw.write(peerSettings); // then silence: no PONG, nothing
  const start = performance.now();
  const ping = await inbox.next('PING');
  assert.ok(ping.opaque.length === 8, 'the session pinged the silent peer');
  const reason = await closed;
  const elapsed = performance.now() - start;
  assert.equal(reason.code, 'DEAD_LINK');
  assert.ok(elapsed < 400 + 600, `detected after ${Math.round(elapsed)} ms`);
});

test('a stall of this process is not mistaken for a dead link when bytes are waiting', async (t) => {
  const { session, raw, inbox, closed } = await rawPeer(t, { pingIntervalMs: 100, deadAfterMs: 200 });
  raw.write(Buffer.concat([peerSettings, encodePing(Buffer.alloc(8))]));
  await inbox.next('PONG');
  // The peer's bytes reach the socket, then this process stalls past deadAfterMs: its
  // liveness timer fires before the poll phase reads them, and must look again after it.
  raw.write(encodePing(Buffer.from('00000000000000ff', 'hex')));
  const until = performance.now() + 400;
  while (performance.now() < until) {
    // busy: the event loop cannot run
  }
  const answered = new Promise<void>((resolve) => inbox.on('frame', (f: ControlFrame) => f.type === 'PONG' && f.opaque[7] === 0xff && resolve()));
  await Promise.race([answered, closed.then((r) => assert.fail(`session closed: ${r.code} ${r.message}`))]);
  assert.equal(session.closeReason, undefined);
});

test('a peer whose process stops is detected as a dead link', async (t) => {
  const { relay, desk, relayClosed } = await tcpPair(t, { pingIntervalMs: 100, deadAfterMs: 400 });
  desk.on('stream', echo);
  const s = relay.openStream(Buffer.alloc(0));
  const streamErr = errorOf(s);
  s.write('before the freeze');
  await once(s, 'data');
  // Freeze the desk: its socket is no longer read and its session no longer runs timers.
  const deskSocket = (desk as unknown as { socket: net.Socket }).socket;
  deskSocket.pause();
  deskSocket.removeAllListeners('data');
  (desk as unknown as { liveness: { stop(e: Error): void } }).liveness.stop(new Error('frozen'));
  const start = performance.now();
  const reason = await relayClosed;
  assert.equal(reason.code, 'DEAD_LINK');
  assert.ok(performance.now() - start < 400 + 600);
  assert.equal(codeOf(await streamErr), 'TUNNEL_CLOSED');
  deskSocket.resume(); // thaw, so the desk sees the relay's close at once
});

test('GOAWAY: no new streams, open ones finish, then both sides close', async (t) => {
  const { relay, desk, relayClosed, deskClosed } = await tcpPair(t);
  const deskStreams: MuxStream[] = [];
  desk.on('stream', (s) => {
    deskStreams.push(s);
    echo(s);
  });
  const a = relay.openStream(Buffer.from('a'));
  a.write('first half, ');
  await once(a, 'data');
  desk.goAway();
  // A stream the relay opens before the GOAWAY reaches it is refused by the desk.
  const b = relay.openStream(Buffer.from('b'));
  assert.equal(codeOf(await errorOf(b)), 'TUNNEL_STREAM_REFUSED');
  // After it arrived, the relay refuses locally.
  const c = relay.openStream(Buffer.from('c'));
  assert.equal(codeOf(await errorOf(c)), 'TUNNEL_STREAM_REFUSED');
  assert.equal(c.id, 0);
  assert.equal(relay.closeReason, undefined, 'the existing stream keeps the session open');
  const rest = readAll(a);
  a.end('second half');
  assert.equal((await rest).toString(), 'second half');
  assert.equal((await relayClosed).code, 'GOAWAY');
  assert.equal((await deskClosed).code, 'GOAWAY');
  assert.equal(deskStreams.length, 1);
});

test('close() destroys every stream on both sides and tells the peer', async (t) => {
  const { relay, desk, relayClosed, deskClosed } = await tcpPair(t);
  const deskErrors: Promise<Error>[] = [];
  desk.on('stream', (s) => deskErrors.push(errorOf(s)));
  const streams = [relay.openStream(Buffer.alloc(0)), relay.openStream(Buffer.alloc(0))];
  for (const s of streams) s.write('x');
  await relay.ping(); // both OPENs processed
  const relayErrors = streams.map(errorOf);
  relay.close({ message: 'relay shutting down' });
  assert.deepEqual(await relayClosed, { code: 'CLOSED', message: 'relay shutting down', cause: undefined });
  const reason = await deskClosed;
  assert.equal(reason.code, 'PEER_CLOSED');
  assert.match(reason.message, /after GOAWAY \(NO_ERROR\)/);
  for (const e of [...(await Promise.all(relayErrors)), ...(await Promise.all(deskErrors))]) {
    assert.equal(codeOf(e), 'TUNNEL_CLOSED');
  }
  await assert.rejects(relay.ping(), { code: 'TUNNEL_CLOSED' });
  const late = relay.openStream(Buffer.alloc(0));
  assert.equal(codeOf(await errorOf(late)), 'TUNNEL_CLOSED');
});

test('bad options and arguments throw INVALID_ARGUMENT', async (t) => {
  const socket = new net.Socket();
  const bad: [unknown, RegExp][] = [
    [{}, /isOpener/],
    [{ isOpener: 1 }, /isOpener/],
    [{ isOpener: true, initialWindow: 100 }, /initialWindow: expected an integer from 1024/],
    [{ isOpener: true, initialWindow: 2 ** 31 }, /initialWindow/],
    [{ isOpener: true, maxFrame: 1.5 }, /maxFrame/],
    [{ isOpener: true, initialWindow: 65536, maxWindow: 32768 }, /maxWindow: must be at least initialWindow/],
    [{ isOpener: true, windowBudget: -1 }, /windowBudget/],
    [{ isOpener: true, maxStreams: -1 }, /maxStreams/],
    [{ isOpener: true, maxOpenMeta: Number.NaN }, /maxOpenMeta/],
    [{ isOpener: true, pingIntervalMs: 0 }, /pingIntervalMs/],
    [{ isOpener: true, pingIntervalMs: 5000, deadAfterMs: 5000 }, /deadAfterMs: must exceed pingIntervalMs/],
  ];
  for (const [opts, pattern] of bad) {
    assert.throws(() => createMuxSession(socket, opts as MuxOptions), (e: unknown) => isPortholeError(e, 'INVALID_ARGUMENT') && pattern.test(e.message));
  }
  assert.throws(() => createMuxSession({} as net.Socket, { isOpener: true }), /expected a Duplex/);
  socket.destroy();

  const { relay } = await tcpPair(t, { maxOpenMeta: 16 });
  assert.throws(() => relay.openStream(Buffer.alloc(17)), (e: unknown) => isPortholeError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => relay.openStream('text' as unknown as Uint8Array), (e: unknown) => isPortholeError(e, 'INVALID_ARGUMENT'));
});
