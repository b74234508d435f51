// `npm start` runs `porthole demo`: the embedded gateway in front of the demo app. The
// one-time link it prints must sign a browser in, and the SSE clock and the WebSocket
// echo must work through the gateway with that session.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'node:http';
import WebSocket from 'ws';
import { type Served, startCli, tempHome } from '../helpers/cli.js';

let served: Served;
const home = tempHome();
let cookie = '';

before(async () => {
  served = await startCli(['demo', '--port', '0', '--json'], { PORTHOLE_HOME: home.home });
});
after(async () => {
  assert.equal(await served.stop(), 0);
  home.cleanup();
});

function get(path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: served.event.port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('prints the URL, a one-time link and its QR', async () => {
  assert.equal(served.event.event, 'listening');
  const link = served.event['link'] as string;
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/\?code=phc_[A-Za-z0-9_-]{43}$/);
  const banner = await served.waitForStderr(/[█▀▄]{10,}/);
  assert.match(banner, /One-time link/);
});

test('the link signs a remote-looking browser in; the page, SSE clock and WebSocket echo work', async () => {
  const link = new URL(served.event['link'] as string);
  // A cross-site-looking first load is not local: only the code lets it in.
  const first = await get(`/${link.search}`, { 'sec-fetch-site': 'cross-site' });
  assert.equal(first.status, 303);
  assert.equal(first.headers['location'], '/');
  const setCookie = (first.headers['set-cookie'] as string[])[0]!;
  cookie = setCookie.split(';')[0]!;

  const page = await get('/', { cookie, 'sec-fetch-site': 'cross-site' });
  assert.equal(page.status, 200);
  assert.match(page.body, /porthole demo app/);

  const who = JSON.parse((await get('/api/whoami', { cookie, 'sec-fetch-site': 'cross-site' })).body);
  // A one-time link makes the browser a paired device (docs/pairing.md): its session is the device's.
  assert.match(who.identity, /sub=device%3A[0-9a-f]{16}; cred=session; scope=admin/);

  // SSE: the first event arrives without waiting for the next tick.
  const event = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: served.event.port, path: '/events', headers: { cookie } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.setEncoding('utf8').once('data', (d: string) => {
        req.destroy();
        resolve(d);
      });
    });
    req.on('error', reject);
    req.end();
  });
  assert.match(event, /^data: \d{4}-\d{2}-\d{2}T/);

  const origin = `http://127.0.0.1:${served.event.port}`;
  const ws = new WebSocket(`ws://127.0.0.1:${served.event.port}/ws`, { headers: { cookie, origin } });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send('hello porthole');
  const echo = await new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
  assert.equal(echo, 'hello porthole');
  ws.close();

  // The code was single use.
  const again = await get(`/${link.search}`, { 'sec-fetch-site': 'cross-site' });
  assert.equal(again.status, 401);
  assert.equal(JSON.parse(again.body).error.code, 'CODE_INVALID');
});

test('the demo tunnel: the printed curl line reaches the app through the embedded relay', async () => {
  const e = await served.waitForEvent((x) => x['event'] === 'tunnel' && x['state'] === 'online');
  assert.equal(e['url'], `https://demo.tunnel.porthole.test:${new URL(e['url'] as string).port}`);
  const banner = await served.waitForStderr(/curl --cacert/);
  assert.ok(banner.includes(e['curl'] as string), 'the banner shows the same curl line');
  // Never `npx porthole`: outside a project that depends on porthole it fetches whatever the
  // registry calls "porthole"; in this checkout it reinstalls it (its `prepare` wipes dist/).
  assert.doesNotMatch(e['curl'] as string, /\bnpx\b/);
  // Run exactly the printed line, in the checkout, as a new user would.
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) => {
    execFile('sh', ['-c', e['curl'] as string], { cwd: new URL('../..', import.meta.url).pathname, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  const who = JSON.parse(out);
  assert.equal(who.ingress, 'tunnel');
  assert.match(who.identity, /sub=owner; cred=token/);
});
