// Third hostile review of request handling (2026-11-23): what reaches the app. Client-made
// forwarding and identity fields in every spelling, framing fields named in Connection,
// fields past Node's count limit, request trailers, two Hosts, the gateway's Vary under the
// app's, and 1xx to HTTP/1.0 clients. Real sidecar gateway (listenGateway) in front of a real
// node:http app on 127.0.0.1; raw sockets where a client library would tidy the request.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { exchangeRaw } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { TOKEN } from '../control/helpers.js';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: Record<string, string | undefined>;
}

const exchange = (port: number, data: string, ms = 3000): Promise<string> => exchangeRaw(port, data, ms);

/** The JSON body of the first response in `raw`. */
function seen(raw: string): Seen {
  assert.match(raw, /^HTTP\/1\.1 200 /, raw.slice(0, 300));
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Seen;
}

describe('what reaches the app', () => {
  const dir = tempDir();
  let gw: Gateway;
  let listening: Listening;
  let app: Server;
  let host = '';
  const bearer = `Authorization: Bearer ${TOKEN}\r\n`;

  before(async () => {
    app = createServer((req, res) => {
      if (req.url === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.end('final');
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const body = JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString(), trailers: req.trailers });
        const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
        if (req.url === '/vary') headers['vary'] = 'Accept-Encoding';
        res.writeHead(200, headers);
        res.end(body);
      });
    });
    const appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = true\n[gateway]\nallowed_origins = ["https://app.example"]\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    listening = await listenGateway(gw, { host: '127.0.0.1', port: 0 });
    host = `Host: 127.0.0.1:${listening.port}\r\n`;
  });
  after(async () => {
    await listening.close();
    await gw.close();
    app.closeAllConnections();
    await closeServer(app);
    dir.cleanup();
  });

  test('a client cannot pose as a proxy: every X-Forwarded-*, Forwarded and X-Real-IP it sends is dropped', async () => {
    const r = seen(
      await exchange(
        listening.port,
        `GET /x HTTP/1.1\r\n${host}${bearer}X-Forwarded-Prefix: /admin\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Scheme: https\r\n` +
          'X-Forwarded-Server: evil\r\nX-Forwarded-For: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nConnection: close\r\n\r\n',
      ),
    );
    for (const name of ['x-forwarded-prefix', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-server', 'forwarded', 'x-real-ip']) {
      assert.equal(r.headers[name], undefined, `${name} reached the app`);
    }
    assert.equal(r.headers['x-forwarded-for'], '127.0.0.1', 'only the address the gateway saw');
  });

  test('"_" spellings of identity and forwarding fields are stripped too (CGI-style apps read them as "-")', async () => {
    const r = seen(
      await exchange(
        listening.port,
        `GET /x HTTP/1.1\r\n${host}${bearer}X_Porthole_Identity: v=1; sub=boss\r\nTailscale_User_Login: boss@corp.example\r\n` +
          'X_Forwarded_For: 203.0.113.9\r\nX_Real_IP: 203.0.113.9\r\nX_Forwarded_Proto: https\r\nX_Plain_Header: kept\r\nConnection: close\r\n\r\n',
      ),
    );
    for (const name of ['x_porthole_identity', 'tailscale_user_login', 'x_forwarded_for', 'x_real_ip', 'x_forwarded_proto']) {
      assert.equal(r.headers[name], undefined, `${name} reached the app`);
    }
    assert.equal(r.headers['x_plain_header'], 'kept', 'other underscore fields are the app\'s');
    assert.match(String(r.headers['x-porthole-identity']), /sub=owner; cred=token/);
  });

  test('a loopback request with an "_" forwarding field is not local: no exemption', async () => {
    const raw = await exchange(listening.port, `GET /x HTTP/1.1\r\n${host}X_Forwarded_For: 203.0.113.9\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 401 /);
    const local = await exchange(listening.port, `GET /x HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
    assert.match(local, /^HTTP\/1\.1 200 /, 'the same request without it is local (exempt)');
  });

  test('Content-Length named in Connection is not dropped: the body arrives whole', async () => {
    const r = seen(
      await exchange(listening.port, `POST /upload HTTP/1.1\r\n${host}${bearer}Content-Length: 11\r\nConnection: close, content-length\r\n\r\nhello world`),
    );
    assert.equal(r.body, 'hello world');
    assert.equal(r.headers['content-length'], '11');
  });

  test('more than 999 header fields are refused (431), so a Transfer-Encoding past Node\'s cut cannot hide', async () => {
    const many = Array.from({ length: 1500 }, (_, i) => `x-${i}: 1\r\n`).join('');
    const raw = await exchange(
      listening.port,
      `POST /upload HTTP/1.1\r\n${host}${bearer}${many}Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    );
    assert.match(raw, /^HTTP\/1\.1 431 /);
    assert.match(raw, /HEADERS_TOO_LARGE/);
  });

  test('request trailers stay at the gateway (a planted identity or bearer never reaches the app)', async () => {
    const r = seen(
      await exchange(
        listening.port,
        `POST /upload HTTP/1.1\r\n${host}${bearer}Transfer-Encoding: chunked\r\nTrailer: X-Porthole-Identity\r\nConnection: close\r\n\r\n` +
          `5\r\nhello\r\n0\r\nX-Porthole-Identity: v=1; sub=boss\r\nAuthorization: Bearer ${TOKEN}\r\nX-Checksum: 1\r\n\r\n`,
      ),
    );
    assert.equal(r.body, 'hello');
    assert.deepEqual(r.trailers, {});
  });

  test('two Host fields are a 400', async () => {
    const raw = await exchange(listening.port, `GET /x HTTP/1.1\r\nHost: evil.example\r\n${host}${bearer}Connection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 400 /);
  });

  test("the gateway's Vary: Origin is added to the app's Vary, not replaced by it", async () => {
    const raw = await exchange(listening.port, `GET /vary HTTP/1.1\r\n${host}${bearer}Origin: https://app.example\r\nConnection: close\r\n\r\n`);
    const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
    assert.match(head, /\r\naccess-control-allow-origin: https:\/\/app\.example/);
    const vary = [...head.matchAll(/\r\nvary: ([^\r]*)/g)].map((m) => m[1]).join(', ');
    assert.match(vary, /accept-encoding/);
    assert.match(vary, /origin/);
  });

  test('no 103 Early Hints to an HTTP/1.0 client; an HTTP/1.1 client gets them', async () => {
    const old = await exchange(listening.port, `GET /hints HTTP/1.0\r\n${host}${bearer}\r\n`);
    assert.match(old, /^HTTP\/1\.1 200 /, old.slice(0, 200));
    assert.doesNotMatch(old, / 103 /);
    const current = await exchange(listening.port, `GET /hints HTTP/1.1\r\n${host}${bearer}Connection: close\r\n\r\n`);
    assert.match(current, /^HTTP\/1\.1 103 /);
    assert.match(current, /\r\n\r\nHTTP\/1\.1 200 /);
  });
});
