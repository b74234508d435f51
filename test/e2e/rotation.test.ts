// Token rotation without a restart, through the real CLI: the old token is refused at once
// (AUTH_REVOKED, not counted as a guess), the sessions it created end, and every long-lived
// response it authenticated (WebSocket, SSE, streamed body) is closed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { connectWs, echoed, login, nextChunk, type OpenStream, openStream, type Reply, send, sessionCookie } from '../helpers/http.js';

const TOKEN_RE = /^ph_[A-Za-z0-9_-]{43}$/;
const cleanups: (() => void)[] = [];
const running: Served[] = [];
let app: EchoApp;

function home(): string {
  const h = tempHome();
  cleanups.push(h.cleanup);
  return h.home;
}

async function serve(portholeHome: string, args: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const s = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--no-loopback-exempt', ...args], {
    PORTHOLE_HOME: portholeHome,
    ...env,
  });
  running.push(s);
  return s;
}

async function stop(s: Served): Promise<void> {
  await s.stop();
  running.splice(running.indexOf(s), 1);
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.code, code, r.text);
}

async function tokenShow(portholeHome: string): Promise<string> {
  const r = await runCli(['token', 'show'], { PORTHOLE_HOME: portholeHome });
  assert.equal(r.code, 0, r.stderr);
  const t = r.stdout.trim();
  assert.match(t, TOKEN_RE);
  assert.equal(r.stdout, `${t}\n`, 'only the token on stdout');
  return t;
}

/** Opens an SSE stream through the gateway and waits until one event pushed by the app arrives. */
async function openSse(port: number, headers: Record<string, string>): Promise<{ stream: OpenStream; upstreamClosed: Promise<unknown> }> {
  const connected = app.nextSse();
  const stream = await openStream(port, '/sse', { ...headers, accept: 'text/event-stream' });
  assert.equal(stream.res.statusCode, 200);
  const upstream: ServerResponse = await connected;
  const upstreamClosed = once(upstream, 'close');
  const got = nextChunk(stream.res);
  upstream.write('data: one\n\n');
  assert.match(await got, /data: one/);
  return { stream, upstreamClosed };
}

/**
 * Waits for every close event. The rotation has returned, so they are due at once; the
 * bound only turns a hang into a failure that names what stayed open.
 */
async function allClosed(closes: Record<string, Promise<unknown>>, boundMs = 15_000): Promise<void> {
  const open = new Set(Object.keys(closes));
  for (const [name, p] of Object.entries(closes)) void p.then(() => open.delete(name));
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still open after the rotation: ${[...open].join(', ')}`)), boundMs);
  });
  try {
    await Promise.race([Promise.all(Object.values(closes)), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** A one-time code from `porthole pair --json`. */
async function pairCode(portholeHome: string): Promise<string> {
  const r = await runCli(['pair', '--json'], { PORTHOLE_HOME: portholeHome });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { code: string }).code;
}

/**
 * Resolves when the app's side of the next request (or upgrade) it receives has closed. Call
 * it just before making that request: the echo app serves one request at a time here.
 */
function nextUpstream(kind: 'request' | 'upgrade'): Promise<void> {
  return new Promise((resolve) => {
    if (kind === 'request') {
      app.server.once('request', (_req, res: ServerResponse) => res.once('close', () => resolve()));
    } else {
      app.server.once('upgrade', (_req, socket: Duplex) => socket.once('close', () => resolve()));
    }
  });
}

before(async () => {
  app = await startEchoApp();
});

after(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await app?.close();
  for (const c of cleanups) c();
});

test('`porthole token rotate` refuses the old token at once and closes everything it authenticated', { timeout: 60_000 }, async () => {
  const h = home();
  const gw = await serve(h);
  const port = gw.event.port;
  const oldToken = gw.event['generatedToken'] as string;
  assert.match(oldToken, TOKEN_RE);
  assert.equal(await tokenShow(h), oldToken);
  const bearer = { authorization: `Bearer ${oldToken}` };

  // Long-lived responses: SSE (bearer), WebSocket (bearer), SSE (session from ?token=),
  // WebSocket (session from a pairing code), and a big download (bearer) read a little, then paused.
  const sse1 = await openSse(port, bearer);
  const wsUpstream = nextUpstream('upgrade');
  const ws = await connectWs(`ws://127.0.0.1:${port}/live`, bearer);
  assert.equal(ws.kind, 'open', JSON.stringify(ws));
  if (ws.kind !== 'open') return;
  const cookie = await login(port, oldToken);
  const sse2 = await openSse(port, { cookie: cookie.pair });
  // A browser signed in by a pairing code, on a WebSocket (cookie + its own Origin); and a
  // code issued before the rotation but not yet used.
  const paired = await pairCode(h);
  const pairedCookie = sessionCookie(await send(port, `/?code=${paired}`));
  const ws2 = await connectWs(`ws://127.0.0.1:${port}/live`, { cookie: pairedCookie.pair, origin: `http://127.0.0.1:${port}` });
  assert.equal(ws2.kind, 'open', JSON.stringify(ws2));
  if (ws2.kind !== 'open') return;
  const unusedCode = await pairCode(h);
  const total = 1024 ** 3;
  const dlUpstream = nextUpstream('request');
  const dl = await openStream(port, `/download?bytes=${total}`, bearer);
  assert.equal(dl.res.statusCode, 200);
  let received = 0;
  dl.res.on('data', (d: Buffer) => {
    received += d.length;
  });
  await nextChunk(dl.res);
  dl.res.pause();
  // Still open: nothing has closed them yet.
  for (const s of [sse1.stream, sse2.stream, dl]) assert.equal(s.res.destroyed, false);
  assert.equal(ws.ws.readyState, ws.ws.OPEN);
  assert.equal(ws2.ws.readyState, ws2.ws.OPEN);

  const rotated = await runCli(['token', 'rotate'], { PORTHOLE_HOME: h });
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.ok(!rotated.stdout.includes('ph_') && !rotated.stderr.includes('ph_'), 'rotate never prints a token');

  // Everything the old token authenticated is closed; the download only after it is read on
  // (a paused client does not look at its socket), and short of its length.
  dl.res.resume();
  await allClosed({
    'SSE (bearer)': sse1.stream.closed,
    'SSE (session cookie)': sse2.stream.closed,
    'WebSocket (bearer)': ws.closed,
    download: dl.closed,
    // …and the gateway let go of the app's side too.
    "app's SSE (bearer)": sse1.upstreamClosed,
    "app's SSE (session cookie)": sse2.upstreamClosed,
    "app's WebSocket": wsUpstream,
    "app's download": dlUpstream,
  });
  assert.equal(dl.res.complete, false, 'the download was cut short');
  assert.ok(received < total, `received ${received} of ${total}`);

  // The old token is refused at once, and is not counted as a guess (no ban after 10 tries).
  for (let i = 0; i < 10; i++) assertError(await send(port, '/', { headers: bearer }), 401, 'AUTH_REVOKED');
  assertError(await send(port, `/?token=${oldToken}`), 401, 'AUTH_REVOKED');
  const oldWs = await connectWs(`ws://127.0.0.1:${port}/live`, bearer);
  assert.equal(oldWs.kind, 'refused');
  if (oldWs.kind === 'refused') assert.equal(oldWs.status, 401);
  // Its sessions ended, and its codes are spent (stale, so not counted either).
  assertError(await send(port, '/', { headers: { cookie: cookie.pair } }), 401, 'AUTH_REQUIRED');
  // A browser paired by a code is a device with its own credential (docs/pairing.md): the
  // rotation leaves it alone — `porthole devices revoke ID` ends it (test/e2e/pairing.test.ts).
  assert.equal(ws2.ws.readyState, ws2.ws.OPEN, 'the paired device stays connected');
  echoed(await send(port, '/', { headers: { cookie: pairedCookie.pair } }));
  ws2.ws.close();
  assertError(await send(port, `/?code=${unusedCode}`), 401, 'CODE_INVALID');

  const newToken = await tokenShow(h);
  assert.notEqual(newToken, oldToken);
  const seen = echoed(await send(port, '/after', { headers: { authorization: `Bearer ${newToken}` } }));
  assert.equal(seen.headers.authorization, undefined);
  const fresh = await login(port, newToken);
  echoed(await send(port, '/after', { headers: { cookie: fresh.pair } }));
});

test('`porthole token rotate` with no gateway running rotates the stored token', async () => {
  const h = home();
  const init = await runCli(['init'], { PORTHOLE_HOME: h });
  assert.equal(init.code, 0, init.stderr);
  const before = await tokenShow(h);
  const rotated = await runCli(['token', 'rotate'], { PORTHOLE_HOME: h });
  assert.equal(rotated.code, 0, rotated.stderr);
  const afterRotate = await tokenShow(h);
  assert.notEqual(afterRotate, before);

  // A gateway started afterwards uses the new token and still knows the old one as rotated.
  const gw = await serve(h);
  assert.equal(gw.event['generatedToken'], undefined, 'no new token on a later start');
  const port = gw.event.port;
  echoed(await send(port, '/', { headers: { authorization: `Bearer ${afterRotate}` } }));
  assertError(await send(port, '/', { headers: { authorization: `Bearer ${before}` } }), 401, 'AUTH_REVOKED');
  await stop(gw);
});

test('a token fixed by PORTHOLE_AUTH_TOKEN cannot be rotated: TOKEN_FIXED, and it keeps working', async () => {
  const h = home();
  const fixed = `ph_${randomBytes(32).toString('base64url')}`;
  const gw = await serve(h, [], { PORTHOLE_AUTH_TOKEN: fixed });
  assert.equal(gw.event['generatedToken'], undefined);
  const port = gw.event.port;
  for (const env of [{ PORTHOLE_HOME: h }, { PORTHOLE_HOME: h, PORTHOLE_AUTH_TOKEN: fixed }]) {
    const r = await runCli(['token', 'rotate'], env);
    assert.notEqual(r.code, 0, `rotate must fail: ${r.stderr}`);
    assert.match(r.stderr, /TOKEN_FIXED/);
  }
  echoed(await send(port, '/', { headers: { authorization: `Bearer ${fixed}` } }));
  await stop(gw);
});
