// Tests for src/gateway/tracker.ts with real TCP sockets on 127.0.0.1: revoking a credential
// closes exactly the long-lived connections it authenticated (DESIGN §3), and closed
// connections leave the tracker on their own.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createConnectionTracker } from '../../src/gateway/tracker.js';

let server: net.Server;
let port: number;
const waiting: ((s: net.Socket) => void)[] = [];
const early: net.Socket[] = [];
const opened: net.Socket[] = [];

before(async () => {
  server = net.createServer((s) => {
    opened.push(s);
    s.on('error', () => {});
    s.pipe(s); // echo, to prove a survivor still works
    const w = waiting.shift();
    if (w) w(s);
    else early.push(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of opened) s.destroy();
  server.close();
  await once(server, 'close');
});

/** A connected pair: the client end and the server's end (what the gateway would track). */
async function pair(): Promise<{ client: net.Socket; conn: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => {
    const s = early.shift();
    if (s) resolve(s);
    else waiting.push(resolve);
  });
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  opened.push(client);
  await once(client, 'connect');
  return { client, conn: await accepted };
}

async function echoes(client: net.Socket): Promise<boolean> {
  client.write('ping');
  const [data] = await once(client, 'data');
  return String(data) === 'ping';
}

test('closeCredential destroys exactly that credential’s connections', async () => {
  const tracker = createConnectionTracker();
  const a1 = await pair();
  const a2 = await pair();
  const b = await pair();
  tracker.add('token:old', a1.conn);
  tracker.add('token:old', a2.conn);
  tracker.add('device:phone', b.conn);
  assert.equal(tracker.count(), 3);
  assert.equal(tracker.count('token:old'), 2);
  assert.equal(tracker.count('device:phone'), 1);

  const aClosed = Promise.all([once(a1.client, 'close'), once(a2.client, 'close')]);
  assert.equal(tracker.closeCredential('token:old'), 2);
  assert.ok(a1.conn.destroyed && a2.conn.destroyed);
  await aClosed; // the remote ends see the connection go
  assert.equal(tracker.count('token:old'), 0);
  assert.equal(tracker.count(), 1);

  assert.ok(!b.conn.destroyed);
  assert.ok(await echoes(b.client), "another credential's connection still works");
  assert.equal(tracker.closeCredential('token:old'), 0, 'nothing left to close');
  assert.equal(tracker.closeCredential('nobody'), 0);

  const bClosed = once(b.client, 'close');
  assert.equal(tracker.closeCredential('device:phone'), 1);
  await bClosed;
  assert.equal(tracker.count(), 0);
});

test('connections that close on their own leave the tracker', async () => {
  const tracker = createConnectionTracker();
  const x = await pair();
  const y = await pair();
  tracker.add('token:t', x.conn);
  tracker.add('token:t', y.conn);
  assert.equal(tracker.count('token:t'), 2);

  const xGone = once(x.conn, 'close'); // registered after the tracker's listener
  x.client.destroy(); // the client hangs up
  await xGone;
  assert.equal(tracker.count('token:t'), 1);

  const yGone = once(y.conn, 'close');
  y.conn.destroy(); // the gateway ends it
  await yGone;
  assert.equal(tracker.count('token:t'), 0);
  assert.equal(tracker.count(), 0);
  assert.equal(tracker.closeCredential('token:t'), 0, 'nothing is destroyed twice');

  // A new connection under the same credential is tracked afresh.
  const z = await pair();
  tracker.add('token:t', z.conn);
  assert.equal(tracker.count('token:t'), 1);
  const zClosed = once(z.client, 'close');
  assert.equal(tracker.closeCredential('token:t'), 1);
  await zClosed;
});

test('closeWhere destroys everything whose credential is no longer valid', async () => {
  const tracker = createConnectionTracker();
  const creds = ['token:new', 'token:old', 'device:a', 'device:b', 'device:a'];
  const pairs = [];
  for (const cred of creds) {
    const p = await pair();
    tracker.add(cred, p.conn);
    pairs.push({ cred, ...p });
  }
  const valid = new Set(['token:new', 'device:b']);
  const doomed = pairs.filter((p) => !valid.has(p.cred));
  const closed = Promise.all(doomed.map((p) => once(p.client, 'close')));
  assert.equal(
    tracker.closeWhere((cred) => valid.has(cred)),
    3,
  );
  await closed;
  for (const p of pairs) assert.equal(p.conn.destroyed, !valid.has(p.cred), p.cred);
  assert.equal(tracker.count(), 2);
  assert.equal(tracker.count('device:a'), 0);
  for (const p of pairs.filter((q) => valid.has(q.cred))) assert.ok(await echoes(p.client), p.cred);
  assert.equal(
    tracker.closeWhere(() => false),
    2,
  );
  assert.equal(tracker.count(), 0);
});

test('a connection that closed before it was added is not tracked', {
}, async () => {
  const tracker = createConnectionTracker();
  const p = await pair();
  const gone = once(p.conn, 'close');
  p.conn.destroy();
  await gone;
  tracker.add('token:t', p.conn);
  assert.equal(tracker.count(), 0);
});
