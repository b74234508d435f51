// Regression tests from the hostile review of the authentication surface (pipeline, control
// plane, pairing). Each test is an attack that once worked; all run against a real gateway
// (createGateway + node:http or listenGateway on 127.0.0.x) with real sockets.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { send } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { challengeOf, rawPeer, TOKEN } from '../control/helpers.js';

function app(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url }));
  });
}

const bearer = { authorization: `Bearer ${TOKEN}` };

describe('trusted-proxy mode: devices paired earlier are no way around the SSO', () => {
  const dir = tempDir();
  let gw: Gateway | undefined;
  let server: ReturnType<typeof createServer> | undefined;
  let port = 0;
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  let deviceId = '';
  let deviceToken = '';

  before(async () => {
    // 1. Token mode: pair an SDK device with a key (what `porthole pair` + exchange do).
    const first = createGateway({ stateDir: dir.dir, app, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    const s1 = createServer(first.handleRequest);
    const p1 = await listen(s1);
    const pair = await send(p1, '/_porthole/api/pair', { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(pair.status, 201, pair.text);
    const code = (pair.json as { code: string }).code;
    const spki = publicKey.export({ format: 'der', type: 'spki' }).toString('base64url');
    const ex = await send(p1, '/_porthole/api/pair/exchange', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code, name: 'phone', kind: 'sdk', publicKey: spki }),
    });
    assert.equal(ex.status, 201, ex.text);
    deviceId = (ex.json as { device: { id: string } }).device.id;
    deviceToken = (ex.json as { token: string }).token;
    await closeServer(s1);
    await first.close();

    // 2. The operator switches to trusted-proxy mode (an SSO in front), same home.
    gw = createGateway({
      stateDir: dir.dir,
      app,
      config: loadConfig({ home: dir.dir, env: {}, flags: { authMode: 'trusted-proxy', trustedProxies: ['127.0.0.2'] } }).config,
    });
    server = createServer(gw.handleRequest);
    server.on('upgrade', gw.handleUpgrade);
    port = await listen(server);
  });

  after(async () => {
    await gw?.close();
    if (server) await closeServer(server);
    dir.cleanup();
  });

  test("the device's bearer is refused over HTTP (as before)", async () => {
    const r = await send(port, '/', { headers: { authorization: `Bearer ${deviceToken}` }, localAddress: '127.0.0.3' });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.code, 'CREDENTIAL_NOT_ACCEPTED');
  });

  test("the device's signature is refused on the control plane: CREDENTIAL_NOT_ACCEPTED, 4001", async () => {
    const peer = await rawPeer(`ws://127.0.0.1:${port}/_porthole/ws`, { localAddress: '127.0.0.3', headers: { host: `localhost:${port}` } });
    const c = await challengeOf(peer);
    const signature = sign(null, Buffer.from(`porthole-control-device-v1\n${c.nonce}\n${c.ts}\n\n${deviceId}`), privateKey).toString('base64url');
    peer.send({ type: 'req', id: '1', method: 'connect', params: { nonce: c.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'device', deviceId, signature } } });
    try {
      const res = await peer.next().catch((e: Error) => ({ closedEarly: e.message }));
      assert.equal((res as { ok?: boolean }).ok, false, `expected a refusal, got ${JSON.stringify(res)}`);
      assert.equal((res as { error: { code: string } }).error.code, 'CREDENTIAL_NOT_ACCEPTED');
      assert.equal((await peer.closed).code, 4001);
    } finally {
      peer.ws.terminate();
    }
  });
});

describe('malformed device ids in the devices API', () => {
  const dir = tempDir();
  let gw: Gateway;
  let server: ReturnType<typeof createServer>;
  let port = 0;

  before(async () => {
    gw = createGateway({ stateDir: dir.dir, app, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    server = createServer(gw.handleRequest);
    port = await listen(server);
  });

  after(async () => {
    await closeServer(server);
    await gw.close();
    dir.cleanup();
  });

  test('a bad percent-escape answers 404 DEVICE_NOT_FOUND instead of throwing out of the request handler', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    // node:test reports an uncaught exception as a failure of the running test; catch it to assert on it.
    process.prependListener('uncaughtException', onUncaught);
    try {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        send(port, '/_porthole/api/devices/%E0%A4%A/revoke', { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: '{}' }),
        new Promise<{ status: number; code: string; text: string }>((resolve) => {
          timer = setTimeout(() => resolve({ status: 0, code: 'no answer within 5 s', text: '' }), 5_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(uncaught, [], 'nothing escaped the handler');
      assert.equal(r.status, 404, r.text);
      assert.equal(r.code, 'DEVICE_NOT_FOUND');
      assert.equal((await send(port, '/_porthole/health')).status, 200, 'the gateway still serves');
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }
  });
});

describe('ban keys: a tunnel visitor never shares a key with a local or LAN client', () => {
  const dir = tempDir();
  let gw: Gateway;
  let server: ReturnType<typeof createServer>;
  let port = 0;
  // Connections from 127.0.0.5 play the tunnel client's in-process streams: the relay says
  // the visitor is 127.0.0.1 (a relay behind a proxy on its own host sees every visitor so;
  // a hostile relay may say anything).
  const RELAYED = '127.0.0.5';

  before(async () => {
    gw = createGateway({ stateDir: dir.dir, app, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    server = createServer(gw.handleRequest);
    server.on('connection', (socket) => {
      if (socket.remoteAddress === RELAYED) gw.markTunnelSocket(socket, '127.0.0.1');
    });
    port = await listen(server);
  });

  after(async () => {
    await closeServer(server);
    await gw.close();
    dir.cleanup();
  });

  test("wrong tokens from tunnel visitors do not ban the desk's own browser", async () => {
    const wrong = { authorization: `Bearer ph_${'x'.repeat(43)}` };
    let last = await send(port, '/', { headers: wrong, localAddress: RELAYED });
    for (let i = 0; i < 10 && last.status !== 429; i++) last = await send(port, '/', { headers: wrong, localAddress: RELAYED });
    assert.equal(last.status, 429, `the tunnel visitor is banned: ${last.text}`);
    const local = await send(port, '/');
    assert.equal(local.status, 200, `the local user (loopback exemption) is not: ${local.text}`);
    const localBearer = await send(port, '/', { headers: bearer });
    assert.equal(localBearer.status, 200, localBearer.text);
  });
});

describe('control events: read-only sessions do not see admin-only data', () => {
  const dir = tempDir();
  let gw: Gateway;
  let server: ReturnType<typeof createServer>;
  let port = 0;

  before(async () => {
    gw = createGateway({ stateDir: dir.dir, app, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    server = createServer(gw.handleRequest);
    server.on('upgrade', gw.handleUpgrade);
    port = await listen(server);
  });

  after(async () => {
    await gw.close();
    await closeServer(server);
    dir.cleanup();
  });

  async function pairSdk(scope: 'admin' | 'read'): Promise<string> {
    const pair = await send(port, '/_porthole/api/pair', { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({ scope }) });
    assert.equal(pair.status, 201, pair.text);
    const ex = await send(port, '/_porthole/api/pair/exchange', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: (pair.json as { code: string }).code, name: `${scope} device`, kind: 'sdk' }),
    });
    assert.equal(ex.status, 201, ex.text);
    return (ex.json as { token: string }).token;
  }

  async function session(token: string) {
    const peer = await rawPeer(`ws://127.0.0.1:${port}/_porthole/ws`);
    const c = await challengeOf(peer);
    peer.send({ type: 'req', id: 'c', method: 'connect', params: { nonce: c.nonce, minProtocol: 1, maxProtocol: 1, auth: { scheme: 'token', token } } });
    const hello = (await peer.next()) as { ok: boolean; payload: { scope: string; events: string[] } };
    assert.equal(hello.ok, true, JSON.stringify(hello));
    return { peer, hello: hello.payload };
  }

  test('device events (names, ids, scopes: admin-only over HTTP) reach admin sessions only', async () => {
    const readOnly = await session(await pairSdk('read'));
    const admin = await session(TOKEN);
    try {
      assert.equal(readOnly.hello.scope, 'read');
      assert.ok(admin.hello.events.includes('devices.changed'), JSON.stringify(admin.hello));
      assert.ok(!readOnly.hello.events.includes('devices.changed'), `not even listed for read: ${JSON.stringify(readOnly.hello)}`);
      // The device list itself is admin-only over HTTP.
      await pairSdk('admin');
      const seen = (await admin.peer.next()) as { type: string; event: string };
      assert.equal(seen.event, 'pair.completed', JSON.stringify(seen));
      // Events are sent to every session in one synchronous pass: an answer the read session
      // gets now would come after any event it had been sent.
      readOnly.peer.send({ type: 'req', id: 'h', method: 'health' });
      const next = (await readOnly.peer.next()) as { type: string; id?: string; event?: string };
      assert.equal(next.type, 'res', `the read session got ${JSON.stringify(next)}`);
      assert.equal(next.id, 'h');
    } finally {
      readOnly.peer.ws.terminate();
      admin.peer.ws.terminate();
    }
  });
});

describe('one-time codes and read-only sessions (second pass of the review)', () => {
  const dir = tempDir();
  let gw: Gateway | undefined;
  let server: ReturnType<typeof createServer> | undefined;
  let port = 0;

  before(async () => {
    gw = createGateway({ stateDir: dir.dir, app, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: { loopbackExempt: false } }).config });
    server = createServer(gw.handleRequest);
    port = await listen(server);
  });
  after(async () => {
    await gw?.close();
    if (server) await closeServer(server);
    dir.cleanup();
  });

  async function pairCode(scope: 'admin' | 'read'): Promise<string> {
    const r = await send(port, '/_porthole/api/pair', { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({ scope }) });
    assert.equal(r.status, 201, r.text);
    return (r.json as { code: string }).code;
  }

  test('a HEAD (a link previewer) does not spend a ?code= link; the GET after it still signs in', async () => {
    const code = await pairCode('admin');
    const probe = await send(port, `/?code=${code}`, { method: 'HEAD' });
    assert.notEqual(probe.status, 303, 'HEAD must not sign in');
    assert.equal(probe.headers['set-cookie'], undefined);
    const real = await send(port, `/?code=${code}`);
    assert.equal(real.status, 303, real.text);
    assert.ok(real.headers['set-cookie'], 'the GET gets the session');
  });

  test('a read-only device may start its own console session and log out', async () => {
    const code = await pairCode('read');
    const ex = await send(port, '/_porthole/api/pair/exchange', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code, name: 'tablet', kind: 'sdk' }),
    });
    assert.equal(ex.status, 201, ex.text);
    const token = (ex.json as { token: string }).token;
    const started = await send(port, '/_porthole/api/session', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.ok(started.status === 200 || started.status === 201, started.text);
    const cookie = String((started.headers['set-cookie'] as string[])[0]).split(';')[0]!;
    assert.equal((await send(port, '/x', { headers: { cookie } })).status, 200);
    assert.equal((await send(port, '/x', { method: 'POST', headers: { cookie, origin: `http://127.0.0.1:${port}` }, body: '' })).code, 'SCOPE_DENIED');
    const out = await send(port, '/_porthole/api/logout', { method: 'POST', headers: { cookie, origin: `http://127.0.0.1:${port}` } });
    assert.equal(out.status, 200, out.text);
    assert.equal((await send(port, '/x', { headers: { cookie } })).status, 401);
  });
});
