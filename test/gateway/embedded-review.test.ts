// Hostile review of the library (createGateway in an app's own node:http server, 2026-11-23):
// every header view the in-process app can read agrees with what a proxied app receives;
// request trailers do not reach it; the app's own Vary keeps the gateway's Origin; one
// gateway per state directory (in this process, in another, and the CLI reaches the
// embedded one); a closed gateway lets nothing through. Real servers on 127.0.0.1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { listenGateway } from '../../src/gateway/listen.js';
import { statePaths } from '../../src/secrets/paths.js';
import { runCli } from '../helpers/cli.js';
import { exchangeRaw, openStream } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { TOKEN } from '../control/helpers.js';

interface Mounted {
  gw: Gateway;
  server: Server;
  port: number;
  close(): Promise<void>;
}

async function mount(stateDir: string, app: RequestListener, settings: Parameters<typeof createGateway>[0]['settings'] = {}, token: string | null = TOKEN): Promise<Mounted> {
  const gw = createGateway({ stateDir, app, ...(token ? { token } : {}), settings: { host: '127.0.0.1', loopbackExempt: false, ...settings } });
  const server = createServer(gw.handleRequest);
  const port = await listen(server);
  return {
    gw,
    server,
    port,
    close: async () => {
      await closeServer(server);
      await gw.close();
    },
  };
}

const bearer = `Authorization: Bearer ${TOKEN}\r\n`;
const status = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
const body = (raw: string) => raw.slice(raw.indexOf('\r\n\r\n') + 4);

describe('the embedded gateway, reviewed', () => {
  const dirs: { cleanup(): void }[] = [];
  const dir = () => {
    const d = tempDir();
    dirs.push(d);
    return d.dir;
  };
  after(() => {
    for (const d of dirs) d.cleanup();
  });

  /** Answers with every header view of the request, as JSON. */
  const views: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('connection', 'close');
      res.end(JSON.stringify({ headers: req.headers, distinct: req.headersDistinct, raw: req.rawHeaders, trailers: req.trailers, rawTrailers: req.rawTrailers }));
    });
  };

  test('headersDistinct agrees with headers: identity set, bearer and planted fields gone, no crash on many stripped fields', async () => {
    const m = await mount(dir(), views);
    try {
      // Three stripped fields used to leave Node's distinct view reading past the rebuilt raw list (a TypeError in the app).
      const raw = await exchangeRaw(
        m.port,
        `GET /v HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n${bearer}Tailscale-User-Login: boss@example.com\r\nTailscale-User-Name: Boss\r\n` +
          'X-Porthole-Identity: v=1; sub=admin\r\nAccept: a\r\nAccept: b\r\n\r\n',
      );
      assert.equal(status(raw), 200, raw);
      const v = JSON.parse(body(raw)) as { headers: Record<string, string>; distinct: Record<string, string[]>; raw: string[] };
      assert.deepEqual(Object.keys(v.distinct).sort(), Object.keys(v.headers).sort());
      for (const [name, value] of Object.entries(v.headers)) assert.deepEqual(v.distinct[name], [value], name);
      assert.ok(v.distinct['x-porthole-identity']?.[0]?.includes('cred=token'), JSON.stringify(v.distinct));
      assert.deepEqual(v.distinct['x-porthole-ingress'], ['local']);
      for (const gone of ['authorization', 'tailscale-user-login', 'tailscale-user-name']) assert.equal(v.distinct[gone], undefined, gone);
    } finally {
      await m.close();
    }
  });

  test('trusted-proxy mode: what the pipeline read from headersDistinct is not what the app gets', async () => {
    const m = await mount(dir(), views, { authMode: 'trusted-proxy', trustedProxies: '127.0.0.1' }, null);
    try {
      const raw = await exchangeRaw(
        m.port,
        `GET /v HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nX-Forwarded-For: 203.0.113.5\r\nX-Forwarded-User: alice\r\n` +
          'X-Porthole-Identity: v=1; sub=admin; cred=token; scope=admin\r\nX-Porthole-Ingress: local\r\nTailscale-User-Login: boss@example.com\r\n\r\n',
      );
      assert.equal(status(raw), 200, raw);
      const v = JSON.parse(body(raw)) as { distinct: Record<string, string[]> };
      assert.equal(v.distinct['tailscale-user-login'], undefined);
      assert.deepEqual(v.distinct['x-porthole-ingress'], ['trusted-proxy']);
      assert.ok(!v.distinct['x-porthole-identity']![0]!.includes('sub=admin'), v.distinct['x-porthole-identity']![0]);
    } finally {
      await m.close();
    }
  });

  test('request trailers do not reach the in-process app', async () => {
    const m = await mount(dir(), views);
    try {
      const raw = await exchangeRaw(
        m.port,
        `POST /t HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n${bearer}Transfer-Encoding: chunked\r\n\r\n` +
          '3\r\nabc\r\n0\r\nX-Porthole-Identity: v=1; sub=forged\r\nTailscale-User-Login: evil@example.com\r\n\r\n',
      );
      assert.equal(status(raw), 200, raw);
      const v = JSON.parse(body(raw)) as { trailers: Record<string, string>; rawTrailers: string[] };
      assert.deepEqual(v.trailers, {});
      assert.deepEqual(v.rawTrailers, []);
    } finally {
      await m.close();
    }
  });

  test("an allowed cross-origin answer keeps Vary: Origin beside the app's own Vary, however the app sets it", async () => {
    const m = await mount(
      dir(),
      (req, res) => {
        if (req.url === '/set') res.setHeader('Vary', 'Accept-Encoding');
        if (req.url === '/remove') res.removeHeader('vary');
        if (req.url === '/array') res.writeHead(200, ['Vary', 'Accept-Language', 'Connection', 'close']);
        else res.writeHead(200, req.url === '/head' ? { vary: 'Cookie', connection: 'close' } : { connection: 'close' });
        res.end('ok');
      },
      { allowedOrigins: 'https://app.example' },
    );
    try {
      for (const [path, want] of [
        ['/set', /accept-encoding/i],
        ['/head', /cookie/i],
        ['/array', /accept-language/i],
        ['/remove', /origin/i],
      ] as const) {
        const raw = await exchangeRaw(m.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n${bearer}Origin: https://app.example\r\n\r\n`);
        assert.equal(status(raw), 200, raw);
        assert.match(raw, /\r\naccess-control-allow-origin: https:\/\/app\.example\r\n/i);
        const vary = [...raw.matchAll(/\r\nvary: ([^\r]*)/gi)].map((x) => x[1]).join(', ');
        assert.match(vary, /\bOrigin\b/, `${path}: ${vary}`);
        assert.match(vary, want, `${path}: ${vary}`);
      }
    } finally {
      await m.close();
    }
  });

  test('one gateway per state directory: a second in this process is refused until the first is closed', async () => {
    const d = dir();
    const first = createGateway({ stateDir: d, app: views, token: TOKEN });
    assert.throws(() => createGateway({ stateDir: d, app: views, token: TOKEN }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'GATEWAY_ALREADY_RUNNING');
      assert.match(err.message, /this one/);
      return true;
    });
    await first.close();
    const second = createGateway({ stateDir: d, app: views, token: TOKEN });
    await second.close();
  });

  test('one gateway per state directory across processes; a dead holder is taken over', async () => {
    const d = dir();
    const script = `import { createGateway } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)};
      createGateway({ stateDir: ${JSON.stringify(d)}, app: (q, s) => s.end(), token: ${JSON.stringify(TOKEN)}, controlSocket: false });
      process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      assert.equal(line.toString().trim(), 'held');
      assert.throws(() => createGateway({ stateDir: d, app: views, token: TOKEN }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'GATEWAY_ALREADY_RUNNING');
        assert.match(err.message, new RegExp(`process ${child.pid}`));
        return true;
      });
    } finally {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
    // Killed without closing: its lock is stale.
    const g = createGateway({ stateDir: d, app: views, token: TOKEN });
    await g.close();
  });

  test('the CLI reaches an embedded gateway: `porthole token rotate` is applied by it at once', async () => {
    const d = dir();
    const m = await mount(d, views, {}, null);
    try {
      const old = m.gw.revealToken();
      const ask = (token: string) => exchangeRaw(m.port, `GET /v HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      assert.equal(status(await ask(old)), 200);
      // The socket listens shortly after createGateway returns.
      const paths = statePaths(d);
      const env = { PORTHOLE_HOME: d, PORTHOLE_SECRET_STORE: 'file' };
      let st = await runCli(['status', '--json'], env);
      for (let i = 0; i < 50 && st.code !== 0; i++) st = await runCli(['status', '--json'], env);
      assert.equal(st.code, 0, st.stderr + paths.socketPath);
      const r = await runCli(['token', 'rotate'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /rotated by the running gateway/);
      assert.equal(status(await ask(old)), 401);
      const fresh = m.gw.revealToken();
      assert.notEqual(fresh, old);
      assert.equal(status(await ask(fresh)), 200);
    } finally {
      await m.close();
    }
  });

  test('a gateway without its socket: the CLI does not act on the state behind its back', async () => {
    const d = dir();
    const g = createGateway({ stateDir: d, app: views, token: TOKEN, controlSocket: false });
    try {
      const r = await runCli(['token', 'rotate'], { PORTHOLE_HOME: d, PORTHOLE_SECRET_STORE: 'file' });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`process ${process.pid}.*\\[GATEWAY_UNREACHABLE\\]`, 's'));
    } finally {
      await g.close();
    }
  });

  test('a closed gateway lets nothing through and ends what it had let through', async () => {
    const d = dir();
    const m = await mount(d, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
    });
    try {
      const stream = await openStream(m.port, '/events', { authorization: `Bearer ${TOKEN}` });
      const ended = new Promise<void>((resolve) => stream.res.once('close', () => resolve()));
      await m.gw.close();
      await ended;
      const raw = await exchangeRaw(m.port, `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n${bearer}\r\n`);
      assert.equal(status(raw), 503, raw);
      assert.match(body(raw), /GATEWAY_CLOSED/);
      // Its state directory is free again.
      const again = createGateway({ stateDir: d, app: views, token: TOKEN });
      await again.close();
    } finally {
      await m.close();
    }
  });

  test('a closed gateway behind the front (porthole serve) answers 503 too', async () => {
    const d = dir();
    const appServer = createServer((_req, res) => res.end('app'));
    const appPort = await listen(appServer);
    const g = createGateway({ stateDir: d, target: `http://127.0.0.1:${appPort}`, token: TOKEN, controlSocket: false });
    const l = await listenGateway(g, { host: '127.0.0.1', port: 0 });
    try {
      const ask = () => exchangeRaw(l.port, `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${l.port}\r\n${bearer}\r\n`);
      assert.equal(status(await ask()), 200);
      await g.close();
      const raw = await ask();
      assert.equal(status(raw), 503, raw);
      assert.match(body(raw), /GATEWAY_CLOSED/);
    } finally {
      await l.close();
      await closeServer(appServer);
    }
  });

  test('a state directory holding a foreign or torn lock file is not refused for it', async () => {
    const d = dir();
    const paths = statePaths(d);
    const g0 = createGateway({ stateDir: d, app: views, token: TOKEN, controlSocket: false });
    await g0.close();
    writeFileSync(join(paths.runDir, 'gateway.lock'), '{"pid":');
    const g = createGateway({ stateDir: d, app: views, token: TOKEN, controlSocket: false });
    await g.close();
  });
});
