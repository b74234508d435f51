// A browser session's end closes what its cookie opened (second hostile review): logging out,
// expiry (idle or absolute) and revocation end the session's SSE streams, app WebSockets and
// control-plane sessions at once — and only that session's, not the credential's others.
// Real gateway (sidecar mode, an echo app as target) on 127.0.0.1, real sockets.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { startEchoApp, type EchoApp } from '../helpers/echo-app.js';
import { connectWs, login, openStream, send } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { challengeOf, rawPeer, TOKEN } from '../control/helpers.js';

/** Fails the test if `p` has not settled within `ms` (a bound on every wait). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

async function startGateway(flags: Parameters<typeof loadConfig>[0]['flags'], toml = '') {
  const dir = tempDir();
  const echo: EchoApp = await startEchoApp();
  if (toml) (await import('node:fs')).writeFileSync(`${dir.dir}/porthole.toml`, `version = 1\n${toml}`);
  const gw: Gateway = createGateway({ stateDir: dir.dir, target: echo.url, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags }).config });
  const server: Server = createServer(gw.handleRequest);
  server.on('upgrade', gw.handleUpgrade);
  const port = await listen(server);
  return {
    gw,
    echo,
    port,
    async close() {
      await gw.close();
      server.closeAllConnections();
      await closeServer(server);
      await echo.close();
      dir.cleanup();
    },
  };
}

type Started = Awaited<ReturnType<typeof startGateway>>;

/** A control-plane session authenticated by the cookie (scheme "session"). */
async function controlBySession(port: number, cookie: string) {
  const peer = await rawPeer(`ws://127.0.0.1:${port}/_porthole/ws`, { headers: { cookie } });
  const c = await challengeOf(peer);
  peer.send({ type: 'req', id: 'c', method: 'connect', params: { nonce: c.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'session' } } });
  return { peer, hello: (await peer.next()) as { ok: boolean; error?: { code: string } } };
}

describe('logout closes what the session opened', () => {
  let g: Started;
  before(async () => {
    g = await startGateway({});
  });
  after(async () => {
    await g.close();
  });

  test('SSE stream, app WebSocket and control session of the logged-out session close; another session of the same token stays', async () => {
    const mine = await login(g.port, TOKEN);
    const other = await login(g.port, TOKEN);

    const sse = g.echo.nextSse();
    const stream = await openStream(g.port, '/sse', { cookie: mine.pair });
    assert.equal(stream.res.statusCode, 200);
    await within(sse, 5000, 'SSE reached the app');
    const otherSse = g.echo.nextSse();
    const otherStream = await openStream(g.port, '/sse', { cookie: other.pair });
    await within(otherSse, 5000, 'second SSE reached the app');

    const ws = await connectWs(`ws://127.0.0.1:${g.port}/ws`, { cookie: mine.pair });
    assert.equal(ws.kind, 'open');
    const control = await controlBySession(g.port, mine.pair);
    assert.equal(control.hello.ok, true, JSON.stringify(control.hello));
    const otherControl = await controlBySession(g.port, other.pair);
    assert.equal(otherControl.hello.ok, true, JSON.stringify(otherControl.hello));

    const out = await send(g.port, '/_porthole/api/logout', { method: 'POST', headers: { cookie: mine.pair } });
    assert.equal(out.status, 200, out.text);

    await within(stream.closed, 5000, 'the SSE stream closed');
    if (ws.kind === 'open') await within(ws.closed, 5000, 'the app WebSocket closed');
    assert.equal((await within(control.peer.closed, 5000, 'the control session closed')).code, 4003);

    // The other session (same token) is untouched, and still works.
    assert.equal(otherStream.res.destroyed, false);
    assert.equal(otherControl.peer.ws.readyState, otherControl.peer.ws.OPEN);
    assert.equal((await send(g.port, '/_porthole/api/session', { headers: { cookie: other.pair } })).status, 200);
    otherStream.req.destroy();
    otherControl.peer.ws.close();
  });

  test('a control connection upgraded before the logout cannot authenticate with the ended session', async () => {
    const mine = await login(g.port, TOKEN);
    const peer = await rawPeer(`ws://127.0.0.1:${g.port}/_porthole/ws`, { headers: { cookie: mine.pair } });
    const c = await challengeOf(peer);
    assert.equal((await send(g.port, '/_porthole/api/logout', { method: 'POST', headers: { cookie: mine.pair } })).status, 200);
    peer.send({ type: 'req', id: 'c', method: 'connect', params: { nonce: c.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'session' } } });
    const res = (await peer.next()) as { ok: boolean; error?: { code: string } };
    assert.equal(res.ok, false);
    assert.equal(res.error?.code, 'AUTH_REQUIRED');
    assert.equal((await within(peer.closed, 5000, 'closed')).code, 4001);
  });
});

describe('expiry closes what the session opened', () => {
  let g: Started;
  before(async () => {
    // Sessions live 2 s at most; the sweep then runs every second.
    g = await startGateway({}, '[auth]\nsession_idle = 2\nsession_max = 2\n');
  });
  after(async () => {
    await g.close();
  });

  test('an SSE stream and a control session end when their session expires, with no request in between', async () => {
    const mine = await login(g.port, TOKEN);
    const sse = g.echo.nextSse();
    const stream = await openStream(g.port, '/sse', { cookie: mine.pair });
    await within(sse, 5000, 'SSE reached the app');
    const control = await controlBySession(g.port, mine.pair);
    assert.equal(control.hello.ok, true, JSON.stringify(control.hello));
    // A token-authenticated control session is not the browser session's: it stays.
    const byToken = await rawPeer(`ws://127.0.0.1:${g.port}/_porthole/ws`);
    const c = await challengeOf(byToken);
    byToken.send({ type: 'req', id: 'c', method: 'connect', params: { nonce: c.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'token', token: TOKEN } } });
    assert.equal(((await byToken.next()) as { ok: boolean }).ok, true);

    await within(stream.closed, 8000, 'the SSE stream closed at expiry');
    assert.equal((await within(control.peer.closed, 8000, 'the control session closed at expiry')).code, 4003);
    assert.equal(byToken.ws.readyState, byToken.ws.OPEN);
    byToken.ws.close();
    // And the cookie is no longer a credential.
    assert.equal((await send(g.port, '/_porthole/api/session', { headers: { cookie: mine.pair } })).status, 401);
  });
});
