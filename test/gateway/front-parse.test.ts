// Differential test of the front's request parser (src/gateway/front.ts) against node:http's
// own server (llhttp, strict, configured as the gateway's). The front may refuse anything —
// a refused head goes to node:http unchanged — but every head it accepts, node:http must
// accept as the same request: same method, target, field names and values, in order. A head
// read two ways would let the pipeline judge one request while the app receives another.
// Seeded, so a failure reproduces; the failing case is printed as a JSON string.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { readRequestHead } from '../../src/gateway/front.js';

const SEED = 0x5eed_f00d;
const CASES = 1500;
const MAX_HEADER = 16 * 1024;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'CONNECT', 'TRACE', 'PRI', 'G ET', 'GET\t', ''];
const TARGETS = ['/', '/a?b=c', '/%41%zz', '/a b', '*', 'http://x.example/', '/\x7f', '/caf\xe9', '/#frag', '//x', '/a\tb', '/a?token=ph_x&y=1', '/_porthole/api/status', '/' + 'x'.repeat(300)];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.10', 'http/1.1', 'HTTP/2.0', 'HTTP/1.1 ', ' HTTP/1.1', 'HTTP/1.'];
const FIELDS = [
  'Host: 127.0.0.1:7070',
  'Host: localhost',
  'Host:',
  'Host: a b',
  'User-Agent: test/1.0',
  'Accept: */*',
  'X-A: b',
  'X-A:b',
  'X-A : b',
  ' X-A: b',
  '\tX-Fold: c',
  'X-A: b ',
  'X-A:\tb\t',
  'X-A: b\x00',
  'X-A: caf\xe9',
  'X-A: \x7f',
  'X-Empty:',
  'X-Empty: ',
  'X@Bad: 1',
  ': novalue',
  'NoColon',
  '__proto__: 1',
  'constructor: x',
  'Content-Length: 0',
  'Content-Length: 00',
  'Content-Length: 5',
  'Content-Length: -0',
  'Transfer-Encoding: chunked',
  'Connection: close',
  'Connection: keep-alive',
  'Connection: keep-alive, Upgrade',
  'Upgrade: websocket',
  'Expect: 100-continue',
  'Authorization: Bearer ph_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
  'Cookie: a=b; porthole_session_x=y',
  'X-Forwarded-For: 203.0.113.9',
  'Origin: https://app.example',
  `X-Long: ${'v'.repeat(4000)}`,
];

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: Record<string, unknown>;
}

/** One case's bytes: a request line, some fields, line ends mostly CRLF. */
function makeCase(r: () => number): Buffer {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  // Mostly well-formed parts (so that many heads are in the subset), sometimes anything.
  const part = (clean: string, any: readonly string[]) => (r() < 0.85 ? clean : pick(any));
  const eol = () => (r() < 0.98 ? '\r\n' : pick(['\n', '\r', '\r\r\n', ' \r\n']));
  const lines = [`${part(pick(METHODS.slice(0, 9)), METHODS)} ${part(pick(TARGETS.slice(0, 3)), TARGETS)} ${part('HTTP/1.1', VERSIONS)}`];
  if (r() < 0.9) lines.push(r() < 0.8 ? 'Host: 127.0.0.1:7070' : pick(FIELDS.slice(0, 4)));
  const n = Math.floor(r() * 7);
  for (let i = 0; i < n; i++) lines.push(r() < 0.75 ? pick(FIELDS.slice(4, 8)) : pick(FIELDS));
  if (r() < 0.05) lines.push(...Array.from({ length: 120 }, (_, i) => `X-${i}: ${i}`));
  let text = '';
  for (const l of lines) text += l + eol();
  text += '\r\n';
  return Buffer.from(text, 'latin1');
}

describe("the front's request parser accepts nothing llhttp reads differently", () => {
  let server: Server;
  let port = 0;
  const results = new Map<Socket, Seen | 'error'>();
  const waiting = new Map<Socket, () => void>();

  before(async () => {
    server = createServer({ maxHeaderSize: MAX_HEADER, requestTimeout: 0 }, (req: IncomingMessage, res) => {
      results.set(req.socket, { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, headers: { ...req.headers } });
      waiting.get(req.socket)?.();
      res.end();
    });
    server.on('clientError', (_err, socket: Socket) => {
      results.set(socket, 'error');
      waiting.get(socket)?.();
      socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /** What node:http made of `bytes`: the request it emitted, or 'error'. */
  function reference(bytes: Buffer): Promise<Seen | 'error'> {
    return new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => {});
      server.once('connection', (s: Socket) => {
        const done = () => {
          waiting.delete(s);
          const r = results.get(s) ?? 'error';
          results.delete(s);
          c.destroy();
          resolve(r);
        };
        waiting.set(s, done);
        s.once('close', () => setImmediate(() => waiting.has(s) && done()));
        // A head llhttp is still waiting on (it wants more) counts as not accepted.
        setTimeout(() => waiting.has(s) && done(), 500);
      });
      c.end(bytes);
    });
  }

  it(`${CASES} seeded heads`, async () => {
    const r = rng(SEED);
    const dummy = new net.Socket();
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      const bytes = makeCase(r);
      const mine = readRequestHead(bytes, MAX_HEADER, dummy);
      if (mine === null || mine === 'incomplete') continue;
      accepted++;
      const ref = await reference(bytes);
      const label = JSON.stringify(bytes.toString('latin1').slice(0, 400));
      assert.notEqual(ref, 'error', `the front accepted a head node:http refuses: ${label}`);
      const seen = ref as Seen;
      assert.equal(mine.length, bytes.length, `head length: ${label}`);
      assert.equal(mine.req.method, seen.method, label);
      assert.equal(mine.req.url, seen.url, label);
      assert.deepEqual(mine.req.rawHeaders, seen.rawHeaders, label);
      assert.deepEqual({ ...mine.req.headers }, seen.headers, label);
    }
    // Not vacuous: a good share of the cases is in the subset.
    assert.ok(accepted > CASES / 5, `only ${accepted} of ${CASES} cases accepted`);
    process.stderr.write(`# front-parse: ${accepted} of ${CASES} heads in the subset, each read alike by llhttp\n`);
  });

  it('refuses what it must hand off: bodies, upgrades, Expect, repeated names, HTTP/1.0, obs-fold, bare LF', () => {
    const dummy = new net.Socket();
    for (const head of [
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      'PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n',
      'GET / HTTP/1.0\r\nHost: a\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n',
      'GET / HTTP/1.1\nHost: a\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: a\r\n\r\n',
      'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n',
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(MAX_HEADER)}\r\n\r\n`,
    ]) {
      assert.equal(readRequestHead(Buffer.from(head, 'latin1'), MAX_HEADER, dummy), null, JSON.stringify(head.slice(0, 80)));
    }
    assert.equal(readRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n'), MAX_HEADER, dummy), 'incomplete');
    const ok = readRequestHead(Buffer.from('GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX-A:  b \t\r\nContent-Length: 0\r\n\r\nNEXT'), MAX_HEADER, dummy);
    assert.ok(ok !== null && ok !== 'incomplete');
    assert.equal(ok.length, 'GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX-A:  b \t\r\nContent-Length: 0\r\n\r\n'.length);
    assert.deepEqual(ok.req.rawHeaders, ['Host', 'a', 'X-A', 'b', 'Content-Length', '0']);
  });
});
