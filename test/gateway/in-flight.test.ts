// [gateway] max_requests_per_client: one client cannot hold every connection to the app. A
// real sidecar gateway (listenGateway, with and without the front) in front of a real
// node:http app on 127.0.0.1, raw sockets. Clients are told apart by X-Forwarded-For from a
// trusted proxy (127.0.0.1 is one here: class trusted-proxy, keyed by the client it names); a
// plain loopback client of a gateway without trusted proxies is local and not counted.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { tempDir } from '../helpers/servers.js';
import { sidecarSuite } from '../helpers/sidecar.js';
import { TOKEN } from '../control/helpers.js';

const LIMIT = 3;

/** Sends `request` on a fresh connection; resolves with everything received until it closes or `until` matches. */
function exchange(port: number, request: string, until = /\r\n\r\n/): { socket: net.Socket; reply: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(request);
  const reply = new Promise<string>((resolve) => {
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until.test(got)) resolve(got);
    });
    socket.once('close', () => resolve(got));
  });
  return { socket, reply };
}

describe('requests in progress per client', () => {
  /** Held answers by id; the app answers when the test says so. */
  const held = new Map<string, ServerResponse>();
  const arrived = new Map<string, () => void>();
  const arrival = (id: string): Promise<void> => new Promise((resolve) => arrived.set(id, resolve));
  const upgrades: net.Socket[] = [];
  const sidecar = sidecarSuite(
    `[auth]\nloopback_exempt = false\n[gateway]\nmax_requests_per_client = ${LIMIT}\ntarget_timeout = 2\ntrusted_proxies = ["127.0.0.1"]\n`,
    (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const id = url.searchParams.get('id') ?? '';
      req.resume();
      if (url.pathname === '/hold') {
        held.set(id, res);
        arrived.get(id)?.();
      } else if (url.pathname === '/fail') {
        req.socket.destroy();
      } else {
        res.end('ok');
      }
    },
    {
      token: TOKEN,
      setup: (app) =>
        app.on('upgrade', (_req, socket: net.Socket) => {
          socket.on('error', () => {});
          // Closes its side when the client has closed its own (the gateway holds the pair until both have).
          socket.on('end', () => socket.end());
          socket.resume();
          socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
          upgrades.push(socket);
        }),
    },
  );
  after(() => {
    for (const s of upgrades) s.destroy();
  });
  const withFront = (): Listening => sidecar.withFront;
  const noFront = (): Listening => sidecar.noFront;

  const head = (l: Listening, line: string, client: string | undefined, extra = ''): string =>
    `${line} HTTP/1.1\r\nHost: 127.0.0.1:${l.port}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
    `${client === undefined ? '' : `X-Forwarded-For: ${client}\r\n`}${extra}\r\n`;

  /** Opens `n` requests of `client` that the app holds; resolves once the app has them all. */
  async function hold(l: Listening, client: string | undefined, ids: string[], post = false): Promise<net.Socket[]> {
    const sockets: net.Socket[] = [];
    for (const id of ids) {
      const there = arrival(id);
      const line = post ? `POST /hold?id=${id}` : `GET /hold?id=${id}`;
      sockets.push(exchange(l.port, post ? `${head(l, line, client, 'Content-Length: 1\r\n')}x` : head(l, line, client)).socket);
      await there;
    }
    return sockets;
  }

  function answer(ids: string[]): void {
    for (const id of ids) {
      held.get(id)?.end('done');
      held.delete(id);
    }
  }

  for (const [name, listening, post] of [
    ['the front', withFront, false],
    ['node:http', noFront, false],
    ['a request with a body', withFront, true],
  ] as const) {
    test(`the ${LIMIT + 1}th request of one client is refused 429 CLIENT_BUSY; other clients are served (${name})`, { timeout: 20_000 }, async () => {
      const l = listening();
      const tag = name.replace(/\W+/g, '-');
      const ids = Array.from({ length: LIMIT }, (_, i) => `${tag}-${i}`);
      const sockets = await hold(l, '198.51.100.7', ids, post);

      const over = exchange(l.port, post ? `${head(l, 'POST /ok', '198.51.100.7', 'Content-Length: 1\r\n')}x` : head(l, 'GET /ok', '198.51.100.7'), /\}/);
      const refused = await over.reply;
      assert.match(refused, /^HTTP\/1\.1 429 /);
      assert.match(refused, /\r\nretry-after: 1\r\n/i);
      assert.match(refused, /"code":"CLIENT_BUSY"/);
      over.socket.destroy();

      // Another client, and an upgrade of the first one.
      const other = exchange(l.port, head(l, 'GET /ok', '198.51.100.8'), /ok$/);
      assert.match(await other.reply, /^HTTP\/1\.1 200 /);
      other.socket.destroy();
      const ws = exchange(l.port, head(l, 'GET /ws', '198.51.100.7', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'), /\}/);
      assert.match(await ws.reply, /^HTTP\/1\.1 429 /);
      ws.socket.destroy();

      // Answered: the places come back.
      answer(ids);
      for (const s of sockets) s.destroy();
      const again = await hold(l, '198.51.100.7', ids.map((id) => `${id}-again`), post);
      answer(ids.map((id) => `${id}-again`));
      for (const s of again) s.destroy();
    });
  }

  test('every way a request ends gives its place back', { timeout: 30_000 }, async () => {
    const client = '198.51.100.9';
    for (const l of [withFront(), noFront()]) {
      // The client leaves while the app holds the request.
      const gone = await hold(l, client, ['leave-a', 'leave-b', 'leave-c']);
      for (const s of gone) s.destroy();
      // The app fails the request (502), and one is never answered (504 after target_timeout).
      const fail = exchange(l.port, head(l, 'GET /fail', client), /\}/);
      assert.match(await fail.reply, /^HTTP\/1\.1 502 /);
      fail.socket.destroy();
      const slow = exchange(l.port, head(l, 'GET /hold?id=timeout', client), /\}/);
      assert.match(await slow.reply, /^HTTP\/1\.1 504 /);
      slow.socket.destroy();
      // An upgraded connection counts until it closes.
      const ws = exchange(l.port, head(l, 'GET /ws', client, 'Connection: Upgrade\r\nUpgrade: websocket\r\n'));
      assert.match(await ws.reply, /^HTTP\/1\.1 101 /);
      ws.socket.destroy();
      // Pipelined behind a held request, then the client leaves: the queued ones end unsent.
      const there = new Promise<void>((resolve) => arrived.set('pipe', resolve));
      const piped = exchange(l.port, head(l, 'GET /hold?id=pipe', client) + head(l, 'GET /ok?n=1', client) + head(l, 'GET /ok?n=2', client));
      await there;
      await new Promise((r) => setTimeout(r, 100));
      piped.socket.destroy();
      await new Promise((r) => setTimeout(r, 200));
      answer(['leave-a', 'leave-b', 'leave-c', 'timeout', 'pipe']);
    }
    // Exactly LIMIT places again: none leaked, none left over.
    const ids = ['end-a', 'end-b', 'end-c'];
    const sockets = await hold(withFront(), client, ids);
    const over = exchange(withFront().port, head(withFront(), 'GET /ok', client), /\}/);
    assert.match(await over.reply, /^HTTP\/1\.1 429 /);
    over.socket.destroy();
    answer(ids);
    for (const s of sockets) s.destroy();
  });

  test('a local client (on the desk itself) is not counted', { timeout: 20_000 }, async () => {
    const home = tempDir();
    writeFileSync(`${home.dir}/porthole.toml`, `version = 1\n[auth]\nloopback_exempt = false\n[gateway]\nmax_requests_per_client = ${LIMIT}\n`);
    const appPort = (sidecar.app.address() as net.AddressInfo).port;
    const local = createGateway({ stateDir: home.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: home.dir, env: {}, flags: {} }).config });
    const l = await listenGateway(local, { host: '127.0.0.1', port: 0 });
    try {
      const ids = Array.from({ length: LIMIT + 2 }, (_, i) => `local-${i}`);
      const sockets = await hold(l, undefined, ids);
      assert.equal(sockets.length, LIMIT + 2);
      answer(ids);
      for (const s of sockets) s.destroy();
    } finally {
      await l.close();
      await local.close();
      home.cleanup();
    }
  });
});
