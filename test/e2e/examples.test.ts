// The embedding examples (examples/*.ts), run as an app would run them: each starts on
// 127.0.0.1 port 0 with its own state directory, and the checks go through real sockets.
// The examples import 'porthole' by name, which resolves to dist/: run `npm run build` first.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createGateway, listenGateway } from 'porthole';
import WebSocket from 'ws';
import { start as startExpress } from '../../examples/express.js';
import { start as startFastify } from '../../examples/fastify.js';
import { start as startHono } from '../../examples/hono.js';
import { fetchRaw, tempDir } from '../helpers/servers.js';

type Start = typeof startExpress;
type Running = Awaited<ReturnType<Start>>;

const EXAMPLES: { name: string; start: Start }[] = [
  { name: 'express', start: startExpress },
  { name: 'fastify', start: startFastify },
  { name: 'hono', start: startHono },
];

function get(running: Running, path: string, headers: http.OutgoingHttpHeaders = {}) {
  return fetchRaw({ port: new URL(running.url).port, path, headers });
}

for (const example of EXAMPLES) {
  describe(`examples/${example.name}.ts`, () => {
    const state = tempDir(`porthole-example-${example.name}-`);
    let running: Running;
    let hostHeader: string;

    before(async () => {
      running = await example.start({ port: 0, stateDir: state.dir });
      hostHeader = new URL(running.url).host;
    });
    after(async () => {
      await running?.close();
      state.cleanup();
    });

    it('serves /api/hello to the same host without a credential (loopback exemption)', async () => {
      const res = await get(running, '/api/hello');
      assert.equal(res.status, 200, res.text);
      const body = JSON.parse(res.text);
      assert.equal(body.identity?.sub, 'local');
      assert.equal(body.identity?.ingress, 'local');
    });

    it('refuses a cross-site request from a web page (Origin: https://evil.example)', async () => {
      const res = await get(running, '/api/hello', { origin: 'https://evil.example' });
      assert.equal(res.status, 401, res.text);
      assert.equal(JSON.parse(res.text).error.code, 'AUTH_REQUIRED');
    });

    it('accepts the bearer token', async () => {
      const res = await get(running, '/api/hello', {
        host: hostHeader,
        authorization: `Bearer ${running.gateway.revealToken()}`,
      });
      assert.equal(res.status, 200, res.text);
    });

    it('tells the app the bearer was the owner', async () => {
      const res = await get(running, '/api/hello', {
        host: hostHeader,
        authorization: `Bearer ${running.gateway.revealToken()}`,
      });
      assert.equal(JSON.parse(res.text).identity?.sub, 'owner');
    });

    it('refuses a Host it does not serve (DNS rebinding)', async () => {
      const res = await get(running, '/api/hello', { host: 'evil.example' });
      assert.equal(res.status, 403, res.text);
      assert.equal(JSON.parse(res.text).error.code, 'HOST_NOT_ALLOWED');
    });

    it('refuses a wrong porthole token', async () => {
      const res = await get(running, '/api/hello', { authorization: `Bearer ph_${'x'.repeat(43)}` });
      assert.equal(res.status, 401, res.text);
      assert.equal(JSON.parse(res.text).error.code, 'AUTH_INVALID');
    });
  });
}

describe('examples/express.ts streams', () => {
  const state = tempDir('porthole-example-express-streams-');
  let running: Running;

  before(async () => {
    running = await startExpress({ port: 0, stateDir: state.dir });
  });
  after(async () => {
    await running?.close();
    state.cleanup();
  });

  it('echoes over a WebSocket through the gateway', async () => {
    const ws = new WebSocket(`${running.url.replace(/^http/, 'ws')}/ws`);
    try {
      await once(ws, 'open');
      ws.send('ping through porthole');
      const [data] = (await once(ws, 'message')) as [Buffer];
      assert.equal(data.toString(), 'ping through porthole');
    } finally {
      ws.close();
      await once(ws, 'close');
    }
  });

  it('refuses a cross-site WebSocket', async () => {
    const ws = new WebSocket(`${running.url.replace(/^http/, 'ws')}/ws`, { origin: 'https://evil.example' });
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
    assert.equal(res.statusCode, 401);
    res.resume();
    ws.terminate();
  });

  it('delivers a server-sent event', async () => {
    const req = http.get({ host: '127.0.0.1', port: new URL(running.url).port, path: '/events', agent: false });
    try {
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.setEncoding('utf8');
      let text = '';
      for await (const chunk of res) {
        text += chunk;
        if (text.includes('\n\n')) break;
      }
      assert.match(text, /^data: \{"now":"[^"]+"\}\n\n/);
    } finally {
      req.destroy();
    }
  });
});

// What an in-process app that reads req.rawHeaders (as @hono/node-server does) receives
// from porthole: the cleaned headers, never porthole's bearer or forged identity headers.
describe('in-process app reading rawHeaders (Hono)', () => {
  const state = tempDir('porthole-rawheaders-');
  let close: () => Promise<void>;
  let port: number;
  let token: string;

  before(async () => {
    const app = new Hono();
    app.get('/headers', (c) => c.json(Object.fromEntries(c.req.raw.headers)));
    const gateway = createGateway({ stateDir: state.dir, app: getRequestListener(app.fetch) });
    const listening = await listenGateway(gateway, { host: '127.0.0.1', port: 0 });
    port = listening.port;
    token = gateway.revealToken();
    close = async () => {
      await listening.close();
      await gateway.close();
    };
  });
  after(async () => {
    await close?.();
    state.cleanup();
  });

  it("never hands porthole's token or forged identity headers to the app", async () => {
    const res = await fetchRaw({
      port,
      path: '/headers',
      headers: {
        authorization: `Bearer ${token}`,
        'x-porthole-identity': 'v=1; sub=forged',
        'x-forwarded-for': '203.0.113.9',
      },
    });
    assert.equal(res.status, 200, res.text);
    const seen = JSON.parse(res.text) as Record<string, string>;
    // assert.ok, not equal: a failure must not print the token.
    assert.ok(!('authorization' in seen), "porthole's bearer token reached the app");
    assert.ok(!('x-forwarded-for' in seen) || seen['x-forwarded-for'] !== '203.0.113.9', 'a client-supplied X-Forwarded-For reached the app');
    assert.match(seen['x-porthole-identity'] ?? '', /^v=1; sub=owner; /);
  });
});
