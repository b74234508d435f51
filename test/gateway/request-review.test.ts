// Second hostile review of request handling: framing and method tricks that once got a
// request past the pipeline, or desynchronised the gateway's pooled connection to the app.
// Real gateway (sidecar mode) in front of a real node:http app on 127.0.0.1, raw sockets.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { TOKEN } from '../control/helpers.js';

/** Writes `data` on a fresh connection; resolves with all it read once the peer closed, or after `ms`. */
function exchange(port: number, data: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      out += d;
    });
    s.on('error', () => {});
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, ms);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(data);
  });
}

describe('request framing: an upgrade request with a body', () => {
  const dir = tempDir();
  let gw: Gateway;
  let gateway: Server;
  let app: Server;
  let port = 0;
  /** Paths the app answered, in order. */
  const served: string[] = [];

  before(async () => {
    // An app that answers without reading request bodies (common: a webhook that just says
    // 200), and serves a secret at /secret. Nothing but porthole guards /secret.
    app = createServer((req, res) => {
      served.push(req.url ?? '');
      res.end(req.url === '/secret' ? 'SECRET' : 'public');
    });
    const appPort = await listen(app);
    writeFileSync(
      `${dir.dir}/porthole.toml`,
      'version = 1\n[auth]\nloopback_exempt = false\npublic_paths = ["/hooks"]\n[gateway]\ntarget_timeout = 2\n',
    );
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    gateway = createServer(gw.handleRequest);
    gateway.on('upgrade', gw.handleUpgrade);
    port = await listen(gateway);
  });

  after(async () => {
    await gw.close();
    gateway.closeAllConnections();
    await closeServer(gateway);
    app.closeAllConnections();
    await closeServer(app);
    dir.cleanup();
  });

  test("is refused: an anonymous visitor cannot desynchronise the app connection another user's request travels on", async () => {
    const host = `Host: 127.0.0.1:${port}\r\n`;
    // A public path, as an upgrade announcing a 600-byte body it never sends. The gateway sent
    // the head to the app (Content-Length kept) and held the body back until a 101; the app
    // answered at once and read the next 600 bytes on that pooled connection as this body:
    // the head of the next user's request. A Node app then dropped that request (the user
    // got 504); an app server that goes on parsing (Go's net/http) would have read whatever
    // the attacker put in the next body as a request of its own, unauthenticated.
    const first = await exchange(port, `GET /hooks/a HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 600\r\n\r\n`);
    assert.match(first, /^HTTP\/1\.1 400 /, first);
    const honest = await exchange(port, `GET /secret HTTP/1.1\r\n${host}Authorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`, 4000);
    assert.match(honest, /^HTTP\/1\.1 200 [\s\S]*SECRET$/, honest);
    // The smuggling form of the same attack: nothing reaches /secret without a credential.
    const smuggled = `${'\r\n'.repeat(300)}GET /secret HTTP/1.1\r\nHost: x\r\n\r\n`;
    await exchange(port, `GET /hooks/a HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 600\r\n\r\n`);
    const second = await exchange(port, `POST /hooks/b HTTP/1.1\r\n${host}Content-Length: ${smuggled.length}\r\nConnection: close\r\n\r\n${smuggled}`, 4000);
    assert.match(second, /^HTTP\/1\.1 200 [\s\S]*public$/, second);
    assert.equal(served.filter((u) => u === '/secret').length, 1, `served: ${served.join(' ')}`);
  });

  test('a chunked upgrade request is refused too; a bodiless one still reaches the app', async () => {
    const host = `Host: 127.0.0.1:${port}\r\n`;
    const chunked = await exchange(port, `GET /hooks/a HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    assert.match(chunked, /^HTTP\/1\.1 400 /, chunked);
    const before = served.length;
    const plain = await exchange(port, `GET /hooks/c HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 0\r\n\r\n`);
    // The app does not speak "foo": it answers 200, which the gateway relays and closes.
    assert.match(plain, /^HTTP\/1\.1 200 [\s\S]*public$/, plain);
    assert.equal(served.length, before + 1);
  });
});
