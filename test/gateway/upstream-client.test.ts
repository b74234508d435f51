// porthole's own upstream HTTP/1.1 client (src/gateway/h1-pool.ts, h1-response.ts) behind the
// proxy, against a scripted raw TCP target: what it must refuse (fail closed: 502 before the
// head, a truncated response after it, the connection never reused), how it frames bodies, when
// it reuses connections, and that bodies written straight from its read buffer arrive intact.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { describe, it, type TestContext } from 'node:test';
import { type UpstreamConn, type UpstreamHandler, UpstreamPool } from '../../src/gateway/h1-pool.js';
import { type ParsedHead, ParseError, ResponseParser, type ResponseSink } from '../../src/gateway/h1-response.js';
import { createProxy } from '../../src/gateway/proxy.js';
import { parseTarget } from '../../src/gateway/target.js';
import { createCertificate } from '../../src/tls/x509.js';
import { closeServer, collectBody, fetchRaw, listen, startHttpServer } from '../helpers/servers.js';

/** A target that answers each request (by path) with the bytes `script` returns, then does what it says. */
interface Scripted {
  port: number;
  /** Connections accepted so far. */
  connections: () => number;
}

type Reply = { bytes: Buffer | string; after?: 'close' };

async function scriptedTarget(t: TestContext, script: (path: string) => Reply): Promise<Scripted> {
  let connections = 0;
  const server = net.createServer((sock) => {
    connections++;
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(buf.indexOf(' ') + 1, buf.indexOf(' HTTP/1.1'));
        buf = buf.slice(i + 4);
        const reply = script(path);
        sock.write(reply.bytes);
        if (reply.after === 'close') sock.end();
      }
    });
  });
  const port = await listen(server);
  t.after(() => closeServer(server));
  return { port, connections: () => connections };
}

/** A front server handing every request to the proxy, as the gateway does. */
async function front(t: TestContext, port: number): Promise<number> {
  const proxy = createProxy({ target: parseTarget(String(port)), timeoutMs: 2000 });
  const server = await startHttpServer((req, res) =>
    proxy.web(req, res, { headers: req.headers, path: req.url ?? '/', clientAddress: '127.0.0.1', proto: 'http', host: req.headers.host }),
  );
  t.after(async () => {
    proxy.close();
    await server.close();
  });
  return server.port;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

describe('upstream client: fails closed on responses that could be read two ways', () => {
  const bad: [string, string][] = [
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'],
    ['a Content-Length that is not digits', 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok'],
    ['a transfer coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\nok'],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok'],
    ['bare LF line endings', 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok'],
    ['a bare CR inside the head', 'HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 2\r\n\r\nok'],
    ['a NUL in a field value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok'],
    ['a malformed status line', 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['another protocol version', 'HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['101 to a request without Upgrade', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['a head over 64 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\nok`],
  ];
  for (const [name, response] of bad) {
    it(`answers 502 for ${name}, then serves the next request on a fresh connection`, async (t) => {
      const target = await scriptedTarget(t, (path) => ({ bytes: path === '/bad' ? response : OK }));
      const port = await front(t, target.port);
      const first = await fetchRaw({ port, path: '/bad' });
      assert.equal(first.status, 502);
      assert.equal(JSON.parse(first.text).error.code, 'TARGET_UNAVAILABLE');
      const second = await fetchRaw({ port, path: '/good' });
      assert.equal(second.text, 'ok');
      assert.equal(target.connections(), 2);
    });
  }

  for (const [name, body] of [
    ['a malformed chunk size', '2\r\nok\r\nzz\r\n'],
    ['chunk data not followed by CRLF', '2\r\nokXX'],
  ] as const) {
    it(`truncates the response after the head for ${name}`, async (t) => {
      const target = await scriptedTarget(t, () => ({ bytes: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}` }));
      const port = await front(t, target.port);
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false });
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      assert.equal(res.statusCode, 200);
      await assert.rejects(collectBody(res), /aborted|ECONNRESET|socket hang up/);
    });
  }
});

describe('upstream client: framing and reuse', () => {
  it('relays a body that runs until the target closes, and opens a new connection after it', async (t) => {
    const target = await scriptedTarget(t, (path) =>
      path === '/eof' ? { bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', after: 'close' } : { bytes: OK },
    );
    const port = await front(t, target.port);
    assert.equal((await fetchRaw({ port, path: '/eof' })).text, 'until the end');
    assert.equal((await fetchRaw({ port, path: '/next' })).text, 'ok');
    assert.equal(target.connections(), 2);
  });

  it('reuses a connection after a clean response, but not after stray bytes, Connection: close or a short Keep-Alive', async (t) => {
    const target = await scriptedTarget(t, (path) => {
      if (path === '/stray') return { bytes: `${OK}GARBAGE` };
      if (path === '/close') return { bytes: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok' };
      if (path === '/short') return { bytes: 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok' };
      return { bytes: OK };
    });
    const port = await front(t, target.port);
    const count = async (path: string): Promise<number> => {
      assert.equal((await fetchRaw({ port, path })).text, 'ok');
      return target.connections();
    };
    assert.equal(await count('/a'), 1);
    assert.equal(await count('/b'), 1); // reused
    assert.equal(await count('/stray'), 1);
    assert.equal(await count('/c'), 2); // the stray bytes ended that connection
    assert.equal(await count('/close'), 2);
    assert.equal(await count('/d'), 3);
    assert.equal(await count('/short'), 3);
    assert.equal(await count('/e'), 4);
  });

  it('relays chunked bodies with extensions and trailers, and 103 Early Hints before them', async (t) => {
    const target = await scriptedTarget(t, () => ({
      bytes:
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n' +
        '5;ext=1\r\nhello\r\n1;x\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 11\r\nConnection: close\r\n\r\n',
    }));
    const port = await front(t, target.port);
    const hints: string[] = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { te: 'trailers' } });
    req.on('information', (info) => hints.push(String(info.headers.link)));
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal((await collectBody(res)).toString(), 'hello world');
    assert.equal(res.trailers['x-sum'], '11');
    assert.equal(res.trailers.connection, undefined);
    assert.deepEqual(hints, ['</a.css>; rel=preload']);
  });

  it('writes a large body straight from its read buffer intact to a slow reader, and to pipelined requests in order', async (t) => {
    const big = randomBytes(12 * 1024 * 1024 + 7);
    const digest = createHash('sha256').update(big).digest('hex');
    const app = await startHttpServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(big.length) });
        res.end(big);
      } else res.end(`small ${req.url}`);
    });
    t.after(() => app.close());
    const port = await front(t, app.port);

    // A reader that pauses now and then, so the client's socket queues and the buffer is held.
    const req = http.get({ host: '127.0.0.1', port, path: '/big', agent: false });
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    const hash = createHash('sha256');
    let n = 0;
    for await (const chunk of res) {
      hash.update(chunk as Buffer);
      if (++n % 16 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(hash.digest('hex'), digest);

    // Two requests in one write: the second response is queued behind the big one.
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect');
    sock.write(`GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /tail HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const raw = await collectBody(sock);
    const headEnd = raw.indexOf('\r\n\r\n') + 4;
    const body = raw.subarray(headEnd, headEnd + big.length);
    assert.equal(createHash('sha256').update(body).digest('hex'), digest);
    const rest = raw.subarray(headEnd + big.length).toString('latin1');
    assert.match(rest, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nsmall \/tail$/);
  });
});

/** Two JS Duplexes joined back to back, delivering asynchronously (like the tunnel's mux streams). */
function jsPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        setImmediate(() => {
          peer().push(chunk);
          cb();
        });
      },
      final(cb) {
        peer().push(null);
        cb();
      },
    });
  ends.push(make(() => ends[1]!), make(() => ends[0]!));
  return [ends[0]!, ends[1]!];
}

describe('upstream client: direct writes to a TLS socket over a JS stream (the tunnel ingress)', () => {
  it('delivers a 32 MiB body intact', async (t) => {
    const big = randomBytes(32 * 1024 * 1024);
    const app = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    });
    t.after(() => app.close());
    const proxy = createProxy({ target: parseTarget(String(app.port)) });
    t.after(() => proxy.close());
    const server = http.createServer((req, res) =>
      proxy.web(req, res, { headers: req.headers, path: req.url ?? '/', clientAddress: '127.0.0.1', proto: 'https', host: 'localhost' }),
    );
    const leaf = createCertificate({ commonName: 'localhost', dnsNames: ['localhost'] });
    const [a, b] = jsPair();
    server.emit('connection', new tls.TLSSocket(a, { isServer: true, cert: leaf.certPem, key: leaf.keyPem }));
    const client = tls.connect({ socket: b, ca: leaf.certPem, servername: 'localhost' });
    t.after(() => client.destroy());
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = http.request({ createConnection: () => client, path: '/', headers: { host: 'localhost' } }, resolve);
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.statusCode, 200);
    const got = await collectBody(res);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(big).digest('hex'));
  });
});

describe('upstream client: pool', () => {
  it('queues requests beyond maxSockets and runs them in order on the freed connection', async (t) => {
    const target = await scriptedTarget(t, (path) => ({ bytes: `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}` }));
    const pool = new UpstreamPool({ host: '127.0.0.1', port: target.port }, { maxSockets: 1, idleMs: 1000, maxHead: 1024, readBuffer: 1024, largeBody: 4096, largeReadBuffer: 8192 });
    t.after(() => pool.destroy());
    const bodies = await Promise.all(
      ['/one', '/two', '/three'].map(
        (path) =>
          new Promise<string>((resolve, reject) => {
            let body = '';
            const handler: UpstreamHandler = {
              onAssign: (_c: UpstreamConn) => {},
              onInfo: () => {},
              onHead: () => {},
              onBody: (chunk) => (body += chunk.toString()),
              onEnd: () => resolve(body),
              onError: reject,
            };
            pool.request(handler, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, false);
          }),
      ),
    );
    assert.deepEqual(bodies, ['/one', '/two', '/three']);
    assert.equal(target.connections(), 1);
  });
});

describe('upstream client: response parser', () => {
  const sample =
    'HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '3\r\nabc\r\na;e=1\r\n0123456789\r\n0\r\nT: v\r\n\r\n';

  function run(pieces: Buffer[]): string[] {
    const events: string[] = [];
    const sink: ResponseSink = {
      info: (h: ParsedHead) => events.push(`info ${h.status}`),
      head: (h: ParsedHead) => events.push(`head ${h.status} chunked=${h.chunked}`),
      body: (c: Buffer) => events.push(`body ${c.toString('latin1')}`),
      end: (tr: string[]) => events.push(`end ${tr.join('=')}`),
    };
    const parser = new ResponseParser(sink, 1024);
    parser.reset(false);
    for (const p of pieces) assert.equal(parser.execute(p), p.length);
    assert.ok(parser.done);
    // Join adjacent body events, which depend on how the input was split.
    return events.reduce<string[]>((out, e) => {
      const last = out[out.length - 1];
      if (e.startsWith('body ') && last?.startsWith('body ')) out[out.length - 1] = last + e.slice(5);
      else out.push(e);
      return out;
    }, []);
  }

  it('gives the same events however the input is split', () => {
    const all = Buffer.from(sample, 'latin1');
    const expected = run([all]);
    assert.deepEqual(expected, ['info 103', 'head 200 chunked=true', 'body abc0123456789', 'end T=v']);
    for (let i = 1; i < all.length; i++) assert.deepEqual(run([all.subarray(0, i), all.subarray(i)]), expected, `split at ${i}`);
    const bytes = [...all].map((b) => Buffer.from([b]));
    assert.deepEqual(run(bytes), expected);
  });

  it('stops at the end of the response and reports what is not its own', () => {
    const parser = new ResponseParser({ info() {}, head() {}, body() {}, end() {} }, 1024);
    parser.reset(false);
    const input = Buffer.from(`${OK}HTTP/1.1 200 OK\r\n`);
    assert.equal(parser.execute(input), OK.length);
    assert.ok(parser.done);
  });

  it('throws ParseError for a chunk size too large to be exact', () => {
    const parser = new ResponseParser({ info() {}, head() {}, body() {}, end() {} }, 1024);
    parser.reset(false);
    assert.throws(() => parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000\r\n')), ParseError);
  });
});
