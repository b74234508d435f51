// The tunnel under failure: relay killed and restarted, relay frozen, names released and
// re-claimed, hostile visitors — the desk comes back on the same URL, notices a dead link
// within the liveness bound, and the local API answers throughout.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startEchoApp, type EchoApp, patternChunk } from '../helpers/echo-app.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { DOMAIN, makePki, type TunnelPki, visit, writeDeskConfig } from '../helpers/tunnel.js';

let pki: TunnelPki;
let app: EchoApp;
const homes: { cleanup(): void }[] = [];
const home = () => {
  const h = tempHome();
  homes.push(h);
  return h.home;
};

before(async () => {
  pki = makePki();
  app = await startEchoApp();
});
after(async () => {
  await app.close();
  pki.cleanup();
  for (const h of homes) h.cleanup();
});

function relayArgs(store: string, port: number): string[] {
  return ['relay', '--domain', DOMAIN, '--listen', `127.0.0.1:${port}`, '--cert', pki.relayCert, '--key', pki.relayKey, '--store', store, '--json'];
}

const deskConfig = (dir: string, relayPort: number, name: string) => writeDeskConfig(pki, dir, relayPort, name);

async function desk(dir: string): Promise<Served> {
  const d = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: dir });
  const r = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir });
  assert.equal(r.code, 0, r.stderr);
  return d;
}

const isTunnel = (state: string) => (e: Record<string, unknown>) => e['event'] === 'tunnel' && e['state'] === state;

test('relay kill -9 and restart: the desk is back on the same URL; the local API answers throughout', async () => {
  const store = home();
  let relay = await startCli(relayArgs(store, 0), { PORTHOLE_HOME: home() });
  const port = relay.event.port;
  const dir = home();
  deskConfig(dir, port, 'phoenix');
  const d = await desk(dir);
  try {
    const first = await d.waitForEvent(isTunnel('online'));
    relay.proc.kill('SIGKILL');
    await relay.exited;
    const from = d.lines.length;
    await d.waitForEvent(isTunnel('waiting'), 20_000, from);
    // The tunnel is down; the local API is not.
    assert.equal((await fetch(`${d.event.url}/_porthole/health`)).status, 200);
    relay = await startCli(relayArgs(store, port), { PORTHOLE_HOME: home() });
    const again = await d.waitForEvent(isTunnel('online'), 40_000, from);
    assert.equal(again['url'], first['url']);
    const token = d.event.generatedToken as string;
    assert.equal((await visit(port, 'phoenix', pki.caPem, '/x', { authorization: `Bearer ${token}` })).status, 200);
    // The audit log tells the story, without secrets.
    const audit = readFileSync(join(dir, 'audit.log'), 'utf8');
    for (const ev of ['consent', 'start', 'online', 'offline']) assert.match(audit, new RegExp(`"event":"${ev}"`));
    assert.doesNotMatch(audit, new RegExp(token));
  } finally {
    await d.stop();
    await relay.stop();
  }
});

test('relay frozen (SIGSTOP): the desk detects the dead link within 10 s', async () => {
  const relay = await startCli(relayArgs(home(), 0), { PORTHOLE_HOME: home() });
  const dir = home();
  deskConfig(dir, relay.event.port, 'frozen');
  const d = await desk(dir);
  try {
    await d.waitForEvent(isTunnel('online'));
    const from = d.lines.length;
    const t0 = Date.now();
    relay.proc.kill('SIGSTOP');
    const e = await d.waitForEvent(isTunnel('waiting'), 30_000, from);
    const took = Date.now() - t0;
    assert.equal((e['lastError'] as { code: string }).code, 'DEAD_LINK');
    assert.ok(took < 12_000, `dead link noticed after ${took} ms`);
    assert.equal((await fetch(`${d.event.url}/_porthole/health`)).status, 200);
  } finally {
    relay.proc.kill('SIGCONT');
    await d.stop();
    await relay.stop();
  }
});

test('release: the name is held back from another desk; the same desk may take it again', async () => {
  const relay = await startCli(relayArgs(home(), 0), { PORTHOLE_HOME: home() });
  const a = home();
  deskConfig(a, relay.event.port, 'heldname');
  const da = await desk(a);
  try {
    await da.waitForEvent(isTunnel('online'));
    const r = await runCli(['tunnel', 'release', '--json'], { PORTHOLE_HOME: a });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { released: 'heldname' });
  } finally {
    await da.stop();
  }
  const b = home();
  deskConfig(b, relay.event.port, 'heldname');
  const db = await desk(b);
  try {
    const e = await db.waitForEvent(isTunnel('waiting'));
    assert.equal((e['lastError'] as { code: string }).code, 'SUBDOMAIN_HELD');
  } finally {
    await db.stop();
  }
  const again = await desk(a);
  try {
    const e = await again.waitForEvent(isTunnel('online'));
    assert.equal(e['name'], 'heldname');
  } finally {
    await again.stop();
    await relay.stop();
  }
});

test('SSE unbuffered, WebSocket and a 256 MiB download through the tunnel', async () => {
  const relay = await startCli(relayArgs(home(), 0), { PORTHOLE_HOME: home() });
  const dir = home();
  deskConfig(dir, relay.event.port, 'streams');
  const d = await desk(dir);
  const token = d.event.generatedToken as string;
  const host = `streams.${DOMAIN}`;
  try {
    await d.waitForEvent(isTunnel('online'));
    // SSE: each event reaches the visitor before the app writes the next.
    const { request } = await import('node:https');
    const sseDone = new Promise<void>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: relay.event.port, servername: host, ca: pki.caPem, path: '/sse', headers: { host, authorization: `Bearer ${token}` } },
        async (res) => {
          assert.equal(res.statusCode, 200);
          res.setEncoding('utf8');
          const next = () => new Promise<string>((r) => res.once('data', r));
          for (let i = 0; i < 3; i++) {
            const pending = next();
            for (const s of app.sse) s.write(`data: ${i}\n\n`);
            assert.equal(await pending, `data: ${i}\n\n`);
          }
          req.destroy();
          resolve();
        },
      );
      req.on('error', reject);
      req.end();
    });
    await app.nextSse();
    await sseDone;

    // ws passes TLS options through to https.request (its types omit servername).
    const wsOptions = { servername: host, ca: pki.caPem, headers: { host, authorization: `Bearer ${token}` } };
    const ws = new WebSocket(`wss://127.0.0.1:${relay.event.port}/ws`, wsOptions as WebSocket.ClientOptions);
    const hello = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.once('error', reject);
    });
    assert.match(hello, /"hello":true/);
    ws.send('through the tunnel');
    assert.equal(await new Promise<string>((r) => ws.once('message', (m) => r(String(m)))), 'through the tunnel');
    ws.close();

    const size = 256 * 1024 * 1024;
    const r = await visit(relay.event.port, 'streams', pki.caPem, `/download?bytes=${size}`, { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200);
    const want = createHash('sha256');
    const chunk = patternChunk(256 * 1024);
    for (let sent = 0; sent < size; sent += chunk.length) want.update(chunk);
    assert.equal(createHash('sha256').update(r.body).digest('hex'), want.digest('hex'));
  } finally {
    await d.stop();
    await relay.stop();
  }
});

test('hostile visitors: garbage, truncated hellos and a slowloris never affect the desk', async () => {
  const relay = await startCli(relayArgs(home(), 0), { PORTHOLE_HOME: home() });
  const dir = home();
  deskConfig(dir, relay.event.port, 'sturdy');
  const d = await desk(dir);
  const token = d.event.generatedToken as string;
  try {
    await d.waitForEvent(isTunnel('online'));
    const port = relay.event.port;
    const closedAfter = (payload: Buffer) =>
      new Promise<void>((resolve, reject) => {
        const s = netConnect(port, '127.0.0.1', () => s.write(payload));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.setTimeout(15_000, () => reject(new Error('relay kept a garbage connection open')));
        s.resume();
      });
    await closedAfter(Buffer.from('GET / HTTP/1.1\r\nHost: sturdy\r\n\r\n'));
    await closedAfter(Buffer.from([22, 3, 1, 0xff, 0xff, 1, 0, 0xff, 0xff]));
    // Slowloris: part of a hello, then nothing — held open, but others are served meanwhile.
    const slow = netConnect(port, '127.0.0.1', () => slow.write(Buffer.from([22, 3, 1, 0, 200])));
    slow.on('error', () => {});
    const r = await visit(port, 'sturdy', pki.caPem, '/ok', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200);
    slow.destroy();
  } finally {
    await d.stop();
    await relay.stop();
  }
});
