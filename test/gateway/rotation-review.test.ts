// Hostile review of rotation and bans (2026-11-24), each test failing on the code before it:
// a pipelined request judged with the old token must not reach the app after a rotation; a
// revoked control session must not run methods while its close handshake is pending; a
// loopback client must not escape its ban by changing X-Forwarded-For or Origin (each new
// key also counts toward one group, banned at 10× the limit). Real
// gateways on 127.0.0.1, raw sockets.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sidecarSuite } from '../helpers/sidecar.js';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { startControlGateway } from '../control/helpers.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a pipelined request judged with the old token', () => {
  const held = new Map<string, ServerResponse>();
  const arrived = new Map<string, () => void>();
  /** Paths of the requests that reached the app, in order. */
  const seen: string[] = [];
  const sidecar = sidecarSuite('[auth]\nloopback_exempt = false\npublic_paths = ["/public"]\n', (req: IncomingMessage, res: ServerResponse) => {
    seen.push(req.url ?? '');
    req.resume();
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/public/hold') {
      const id = url.searchParams.get('id') ?? '';
      held.set(id, res);
      arrived.get(id)?.();
    } else {
      req.on('end', () => res.end('done'));
    }
  });

  for (const [name, listening] of [
    ['node:http', () => sidecar.noFront],
    ['the front', () => sidecar.withFront],
  ] as const) {
    for (const body of [true, false]) {
      test(`is never forwarded once the token is rotated (${name}, ${body ? 'with' : 'without'} a body)`, { timeout: 15_000 }, async () => {
        const l = listening();
        const id = `${name.replace(/\W+/g, '-')}-${body}`;
        const there = new Promise<void>((resolve) => arrived.set(id, resolve));
        const old = sidecar.gw.revealToken();
        const s = net.connect(l.port, '127.0.0.1');
        s.on('error', () => {});
        const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
        const host = `Host: 127.0.0.1:${l.port}\r\n`;
        // An anonymous request to a public path (which rotation does not close), and behind it,
        // pipelined, one with the token that is about to be rotated.
        s.write(
          `GET /public/hold?id=${id} HTTP/1.1\r\n${host}\r\n` +
            `${body ? 'POST' : 'GET'} /admin/${id} HTTP/1.1\r\n${host}Authorization: Bearer ${old}\r\n` +
            `${body ? 'Content-Length: 5\r\n\r\nhello' : '\r\n'}`,
        );
        await there;
        await sleep(100); // node:http has parsed (and judged) the second request by now
        sidecar.gw.rotateToken();
        held.get(id)?.end('public');
        await Promise.race([closed, sleep(1_000)]);
        await sleep(200);
        s.destroy();
        assert.ok(!seen.includes(`/admin/${id}`), `the old token's request reached the app: ${JSON.stringify(seen)}`);
      });
    }
  }
});

describe('bans on loopback requests that are not local', () => {
  const dir = tempDir();
  let gw: Gateway;
  let l: Listening;
  let app: Server;

  before(async () => {
    app = createServer((_req, res) => res.end('app'));
    const appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = false\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    l = await listenGateway(gw, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await l.close();
    await gw.close();
    app.closeAllConnections();
    await closeServer(app);
    dir.cleanup();
  });

  async function status(extra: string, token: string): Promise<number> {
    const s = net.connect(l.port, '127.0.0.1');
    s.on('error', () => {});
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${l.port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n${extra}\r\n`);
    let got = '';
    for await (const d of s) got += (d as Buffer).toString('latin1');
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0);
  }

  test('changing X-Forwarded-For or Origin does not escape the ban', { timeout: 30_000 }, async () => {
    const wrong = `ph_${randomBytes(32).toString('base64url')}`;
    // One client behind an (unconfigured) same-host proxy is banned on its own...
    for (let i = 0; i < 5; i++) assert.equal(await status('X-Forwarded-For: 198.51.100.1\r\n', wrong), i < 4 ? 401 : 429, `attempt ${i + 1}`);
    assert.equal(await status('X-Forwarded-For: 198.51.100.2\r\n', gw.revealToken()), 200, 'another visitor of that proxy');
    // ...and a new header per guess buys at most the group's budget (10 × 5): 45 more guesses,
    // under as many keys, and every loopback request that is not local is refused.
    const heads = (n: number) => (n % 2 === 0 ? `X-Forwarded-For: 203.0.113.${n}\r\n` : `Origin: https://o${n}.example\r\n`);
    for (let n = 0; n < 45; n++) assert.equal(await status(heads(n), wrong), n < 44 ? 401 : 429, `guess ${n + 6}`);
    for (const extra of ['X-Forwarded-For: 198.51.100.77\r\n', 'Origin: https://fresh.example\r\n', 'Forwarded: for=192.0.2.9\r\n']) {
      assert.equal(await status(extra, gw.revealToken()), 429, `a new header escaped the ban: ${extra.trim()}`);
    }
    // The desk's own user (local: no forwarding headers, a loopback Host) is not banned.
    assert.equal(await status('', gw.revealToken()), 200);
  });
});

/** A WebSocket client that never answers a close frame (which ws would do on its own). */
function rawControl(port: number): Promise<{ send(frame: unknown): void; frames: { op: number; text: string; code?: number }[]; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const frames: { op: number; text: string; code?: number }[] = [];
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', reject);
    socket.write(
      `GET /_porthole/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
    const send = (frame: unknown): void => {
      const payload = Buffer.from(JSON.stringify(frame));
      const mask = randomBytes(4);
      const len = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([len, mask, masked]));
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes('101')) return reject(new Error(buf.toString()));
        buf = buf.subarray(end + 4);
        upgraded = true;
        resolve({ send, frames, socket });
      }
      while (buf.length >= 2) {
        let len = buf[1]! & 127;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        }
        if (buf.length < at + len) return;
        const op = buf[0]! & 15;
        const payload = buf.subarray(at, at + len);
        frames.push(op === 8 ? { op, text: payload.subarray(2).toString(), code: payload.readUInt16BE(0) } : { op, text: payload.toString() });
        buf = buf.subarray(at + len);
      }
    });
  });
}

test('a revoked control session runs nothing while its close handshake is pending', { timeout: 15_000 }, async () => {
  const g = await startControlGateway({ token: null });
  try {
    const first = g.gateway.revealToken();
    const c = await rawControl(g.listening.port);
    const waitFor = async (pred: () => boolean): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!pred() && Date.now() < deadline) await sleep(10);
      assert.ok(pred(), JSON.stringify(c.frames));
    };
    await waitFor(() => c.frames.length >= 1);
    const nonce = (JSON.parse(c.frames[0]!.text) as { payload: { nonce: string } }).payload.nonce;
    c.send({ type: 'req', id: '1', method: 'connect', params: { nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'token', token: first } } });
    await waitFor(() => c.frames.some((f) => f.text.includes('"id":"1"')));
    assert.match(c.frames.find((f) => f.text.includes('"id":"1"'))!.text, /"ok":true/);

    g.gateway.rotateToken();
    const second = g.gateway.revealToken();
    await waitFor(() => c.frames.some((f) => f.op === 8));
    assert.equal(c.frames.find((f) => f.op === 8)!.code, 4003);
    // The peer ignores the close and asks for another rotation on the revoked session.
    c.send({ type: 'req', id: '2', method: 'token.rotate', params: {} });
    await sleep(500);
    assert.equal(g.gateway.revealToken(), second, 'a revoked session rotated the token');
    c.socket.destroy();
  } finally {
    await g.close();
  }
});
