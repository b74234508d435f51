// Hostile review of what one client can hold (2026-11-23): transfers that stop moving end
// after [gateway] stall_timeout — an upload the client stopped sending, an app not reading
// its request body, a client not reading its answer (front, node:http fast path, node:http
// with a body), a WebSocket whose app stopped reading — and a refused request's body is not
// drained for the client. Real sidecar gateways (listenGateway) in front of a real node:http
// app on 127.0.0.1, raw sockets.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sidecarSuite } from '../helpers/sidecar.js';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { TOKEN } from '../control/helpers.js';

const BIG = Buffer.alloc(1024 * 1024, 0x61);
/** Copied whole into one write by the front (under its direct-write threshold). */
const SMALL = Buffer.alloc(60 * 1024, 0x64);
/** Long enough that no client buffer and no socket buffer holds it all. */
const BIG_COUNT = 256;

/** Resolves with the first chunk the socket receives (as latin1), or '' when it closes first. */
function firstData(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    s.once('data', (d: Buffer) => resolve(d.toString('latin1')));
    s.once('close', () => resolve(''));
  });
}

/** Writes `total` bytes as fast as `s` takes them (waiting for 'drain'); stops early if it closes. */
function pump(s: net.Socket, total: number): void {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let left = total;
  const more = (): void => {
    while (left > 0 && !s.destroyed) {
      left -= chunk.length;
      if (!s.write(chunk)) {
        s.once('drain', more);
        return;
      }
    }
  };
  more();
}

describe('what one client can hold', () => {
  /** Resolves when the app sees the named request's connection end before its answer finished. */
  const cut = new Map<string, () => void>();
  /** Upgraded connections the app does not read. */
  const appSockets = new Map<string, net.Socket>();
  /** Requests whose body the app does not read. */
  const sinks = new Map<string, IncomingMessage>();
  const cutOf = (id: string): Promise<void> => new Promise((resolve) => cut.set(id, resolve));
  const noteCut = (id: string, req: IncomingMessage, res: ServerResponse): void => {
    const done = (): void => {
      if (!res.writableFinished) cut.get(id)?.();
    };
    res.once('close', done);
    req.once('close', () => {
      if (!req.complete) cut.get(id)?.();
    });
  };

  const sidecar = sidecarSuite(
    '[auth]\nloopback_exempt = false\n[gateway]\nstall_timeout = 1\ntarget_timeout = 30\n',
    (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const id = url.searchParams.get('id') ?? '';
      noteCut(id, req, res);
      if (url.pathname === '/big') {
        // Streams until the client stops taking it.
        req.resume();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length * BIG_COUNT) });
        let sent = 0;
        const more = (): void => {
          while (sent < BIG_COUNT) {
            sent++;
            if (!res.write(BIG)) {
              res.once('drain', more);
              return;
            }
          }
          res.end();
        };
        more();
      } else if (url.pathname === '/small') {
        res.end(SMALL);
      } else if (url.pathname === '/sink') {
        // Reads none of the body (until the test says so), never answers.
        req.pause();
        sinks.set(id, req);
      } else {
        let n = 0;
        req.on('data', (d: Buffer) => (n += d.length));
        req.on('end', () => res.end(`got ${n}`));
      }
    },
    {
      token: TOKEN,
      // An app that accepts a WebSocket-like upgrade and then reads nothing.
      setup: (app) => {
        app.on('upgrade', (req: IncomingMessage, socket: net.Socket) => {
          const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
          socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
          socket.pause();
          socket.on('error', () => {});
          socket.once('close', () => cut.get(id)?.());
          appSockets.set(id, socket);
        });
      },
    },
  );
  const withFront = (): Listening => sidecar.withFront;
  const noFront = (): Listening => sidecar.noFront;

  const head = (l: Listening, line: string, extra = ''): string =>
    `${line} HTTP/1.1\r\nHost: 127.0.0.1:${l.port}\r\nAuthorization: Bearer ${TOKEN}\r\n${extra}\r\n`;

  for (const [name, listening, request] of [
    ['the front (bodiless)', withFront, (l: Listening, id: string) => head(l, `GET /big?id=${id}`)],
    ['node:http, bodiless', noFront, (l: Listening, id: string) => head(l, `GET /big?id=${id}`)],
    ['node:http, with a body', withFront, (l: Listening, id: string) => `${head(l, `POST /big?id=${id}`, 'Content-Length: 1\r\n')}x`],
  ] as const) {
    test(`a client that stops reading its answer loses the connection, and the app's is released (${name})`, { timeout: 15_000 }, async () => {
      const l = listening();
      const id = `read-${name.replace(/\W+/g, '-')}`;
      const released = cutOf(id);
      const s = net.connect(l.port, '127.0.0.1');
      s.on('error', () => {});
      s.pause(); // reads nothing
      s.write(request(l, id));
      await released; // within stall_timeout (1 s) of the last byte it took
      s.destroy();
    });
  }

  test('a client that pipelines small requests and reads none of the answers loses its connection (the front)', { timeout: 15_000 }, async () => {
    const connections = (): Promise<number> =>
      new Promise((resolve, reject) => withFront().server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const before = await connections();
    const s = net.connect(withFront().port, '127.0.0.1');
    s.on('error', () => {});
    s.pause();
    await new Promise((resolve) => s.once('connect', resolve));
    let data = '';
    for (let i = 0; i < 200; i++) data += head(withFront(), `GET /small?n=${i}`);
    s.write(data);
    // Open now; closed by the server within stall_timeout (1 s) plus the front's 1 s sweep.
    assert.equal(await connections(), before + 1);
    const deadline = Date.now() + 10_000;
    while ((await connections()) > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await connections(), before, 'the connection of a client that reads nothing is still open');
    s.destroy();
  });

  test('an upload the client stops sending: 408 REQUEST_TIMEOUT, connection closed, the app sees its request cut', { timeout: 15_000 }, async () => {
    const id = 'slow-upload';
    const released = cutOf(id);
    const s = net.connect(withFront().port, '127.0.0.1');
    s.on('error', () => {});
    const answer = firstData(s);
    const closed = new Promise((resolve) => s.once('close', resolve));
    s.write(`${head(withFront(), `POST /echo?id=${id}`, 'Content-Length: 1000\r\n')}only ten b`);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 408 /, text);
    assert.match(text, /REQUEST_TIMEOUT/);
    assert.match(text, /\r\nConnection: close\r\n/i);
    await closed;
    await released;
  });

  test('an app that stops reading the body it is sent: 504, both connections closed', { timeout: 15_000 }, async () => {
    const id = 'app-not-reading';
    const released = cutOf(id);
    const s = net.connect(withFront().port, '127.0.0.1');
    s.on('error', () => {});
    const answer = firstData(s);
    s.write(head(withFront(), `POST /sink?id=${id}`, `Content-Length: ${64 * 1024 * 1024}\r\n`));
    // Send (on each 'drain') until the gateway stops taking it: the app reads nothing, so all buffers fill.
    pump(s, 64 * 1024 * 1024);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 504 /, text);
    assert.match(text, /TARGET_TIMEOUT/);
    // A paused socket does not see its peer leave: the app reads again, and finds its request cut.
    sinks.get(id)!.resume();
    await released;
    s.destroy();
  });

  test('a WebSocket whose app stopped reading: both sides closed once the client has waited stall_timeout', { timeout: 15_000 }, async () => {
    const id = 'ws-stalled';
    const released = cutOf(id);
    const s = net.connect(withFront().port, '127.0.0.1');
    s.on('error', () => {});
    const upgraded = firstData(s);
    s.write(head(withFront(), `GET /ws?id=${id}`, 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'));
    assert.match(await upgraded, /^HTTP\/1\.1 101 /);
    const closed = new Promise((resolve) => s.once('close', resolve));
    pump(s, 64 * 1024 * 1024);
    await closed;
    // The app's paused socket does not report its peer's FIN; writing, it finds the connection gone.
    const app = appSockets.get(id)!;
    const ping = setInterval(() => app.write('ping'), 50);
    await released;
    clearInterval(ping);
  });

  test('a refused request with a body unsent: 401 and the connection closes, the body is not drained', { timeout: 15_000 }, async () => {
    const s = net.connect(withFront().port, '127.0.0.1');
    s.on('error', () => {});
    const answer = firstData(s);
    const closed = new Promise((resolve) => s.once('close', resolve));
    s.write(`POST /echo HTTP/1.1\r\nHost: 127.0.0.1:${withFront().port}\r\nContent-Length: 100000000\r\n\r\nfirst bytes`);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 401 /, text);
    assert.match(text, /\r\nConnection: close\r\n/i);
    await closed;
  });
});

describe('waiting for a connection to the app', () => {
  const dir = tempDir();
  let gw: Gateway;
  let l: Listening;
  let app: Server;
  const held: net.Socket[] = [];

  before(async () => {
    // Reads what it is sent and never answers: each request holds a connection of the pool.
    app = createServer((req) => req.resume());
    app.on('upgrade', (_req: IncomingMessage, socket: net.Socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    const appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = false\n[gateway]\ntarget_timeout = 1\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    l = await listenGateway(gw, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    for (const s of held) s.destroy();
    await l.close();
    await gw.close();
    app.closeAllConnections();
    await closeServer(app);
    dir.cleanup();
  });

  test('an upgrade queued behind a full pool gets 504 after target_timeout, not silence', { timeout: 30_000 }, async () => {
    // 1,024 uploads that never finish take every connection the pool may open to the app.
    const auth = `Host: 127.0.0.1:${l.port}\r\nAuthorization: Bearer ${TOKEN}\r\n`;
    let open = 0;
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 1024; i++) {
        const s = net.connect(l.port, '127.0.0.1', () => {
          s.write(`POST /hold HTTP/1.1\r\n${auth}Content-Length: 2\r\n\r\nx`);
          if (++open === 1024) resolve();
        });
        s.on('error', () => {});
        held.push(s);
      }
    });
    // Let the gateway forward them (each takes a pooled connection).
    const appConnections = (): Promise<number> => new Promise((resolve, reject) => app.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const deadline = Date.now() + 10_000;
    while ((await appConnections()) < 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await appConnections(), 1024);
    const s = net.connect(l.port, '127.0.0.1');
    s.on('error', () => {});
    const answer = firstData(s);
    s.write(`GET /ws HTTP/1.1\r\n${auth}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 504 /, text);
    assert.match(text, /TARGET_TIMEOUT/);
    s.destroy();
  });

  test('so does a request with a body, sent in full but queued behind the full pool', { timeout: 30_000 }, async () => {
    // The 1,024 uploads of the test above still hold every connection.
    const s = net.connect(l.port, '127.0.0.1');
    s.on('error', () => {});
    const answer = firstData(s);
    s.write(`POST /queued HTTP/1.1\r\nHost: 127.0.0.1:${l.port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 5\r\n\r\nhello`);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 504 /, text);
    assert.match(text, /TARGET_TIMEOUT/);
    s.destroy();
  });
});
