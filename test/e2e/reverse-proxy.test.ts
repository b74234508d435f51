// The configs `porthole proxy-config caddy|nginx` prints, run for real (Debian's nginx and
// Caddy) in front of a real `porthole serve`, with a test CA: SSE arrives unbuffered,
// WebSockets work, Authorization and the proxy's X-Forwarded-* reach porthole and the app,
// `porthole proxy test` passes — and fails with the right class for each real fault.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import net, { type LookupFunction } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ClientOptions, WebSocket } from 'ws';
import { createCertificate } from '../../src/tls/x509.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { cliCode } from '../helpers/e2e.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnlessExecutable } from '../helpers/peers.js';
import { type RunningProxy, startReverseProxy, unusedPort } from '../helpers/reverse-proxies.js';

const NAME = 'desk.example.test';
const TOKEN = `ph_${'r'.repeat(43)}`;
const WAIT_MS = 10_000;

interface Pki {
  ca: string;
  caPem: string;
  otherCa: string;
  cert: string;
  key: string;
}

function makePki(dir: string): Pki {
  const ca = createCertificate({ commonName: 'porthole proxy test CA', isCA: true });
  const other = createCertificate({ commonName: 'some other CA', isCA: true });
  const leaf = createCertificate({ commonName: NAME, dnsNames: [NAME], issuer: ca });
  const write = (name: string, text: string, mode = 0o644) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    return p;
  };
  return {
    ca: write('ca.pem', ca.certPem),
    caPem: ca.certPem,
    otherCa: write('other-ca.pem', other.certPem),
    cert: write('leaf.pem', leaf.certPem),
    key: write('leaf-key.pem', leaf.keyPem, 0o600),
  };
}

/** The config `porthole proxy-config` prints, for a proxy on 127.0.0.1:port. */
async function generated(kind: 'nginx' | 'caddy', port: number, upstream: string, pki: Pki, home: string): Promise<string> {
  const r = await runCli(
    [
      'proxy-config',
      kind,
      '--public-url',
      `https://${NAME}:${port}`,
      '--upstream',
      upstream,
      '--listen',
      `127.0.0.1:${port}`,
      '--cert',
      pki.cert,
      '--key',
      pki.key,
      '--no-http-redirect',
      ...(kind === 'caddy' ? ['--caddy-admin', 'off'] : []),
    ],
    { PORTHOLE_HOME: home },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /trusted_proxies = \["127\.0\.0\.1"\]/);
  return r.stdout;
}

interface HttpsReply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** An HTTPS request as a visitor of https://NAME:port makes it, dialled at 127.0.0.1. */
function visit(port: number, caPem: string, path: string, headers: Record<string, string> = {}): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, servername: NAME, ca: caPem, path, headers: { host: `${NAME}:${port}`, ...headers }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(WAIT_MS, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the next data chunk, or rejects after WAIT_MS: a buffering proxy would hold it. */
function nextChunk(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      res.off('data', onData);
      reject(new Error(`no chunk within ${WAIT_MS} ms: buffered?`));
    }, WAIT_MS);
    const onData = (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString('utf8'));
    };
    res.once('data', onData);
  });
}

async function proxyTest(args: string[], home: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['proxy', 'test', ...args], { PORTHOLE_HOME: home }, 30_000);
}

for (const kind of ['nginx', 'caddy'] as const) {
  describe(`reverse proxy: ${kind} with the generated config`, { skip: skipUnlessExecutable(kind) }, () => {
    const home = tempHome();
    let pki: Pki;
    let app: EchoApp;
    let gateway: Served;
    let proxy: RunningProxy;
    let url: string;

    before(async () => {
      pki = makePki(home.home);
      app = await startEchoApp();
      gateway = await startCli(
        ['serve', '--target', app.url, '--port', '0', '--json', '--public-url', `https://${NAME}`, '--trusted-proxies', '127.0.0.1'],
        { PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN },
      );
      proxy = await startReverseProxy(kind, join(home.home, kind), (port) =>
        generated(kind, port, `127.0.0.1:${gateway.event.port}`, pki, home.home),
      );
      url = `https://${NAME}:${proxy.port}`;
    });

    after(async () => {
      await proxy?.stop();
      await gateway?.stop();
      await app?.close();
      home.cleanup();
    });

    test('`porthole proxy test` passes through the proxy', async () => {
      const r = await proxyTest([url, '--connect', '127.0.0.1', '--ca', pki.ca], home.home);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^OK  porthole \\S+ answers at ${url.replace(/\./g, '\\.')}/_porthole/ping`));
      assert.match(r.stdout, /TLS TLSv1\.[23], certificate for desk\.example\.test from porthole proxy test CA/);
      const json = await proxyTest([url, '--connect', '127.0.0.1', '--ca', pki.ca, '--json'], home.home);
      assert.equal(json.code, 0, json.stderr);
      const body = JSON.parse(json.stdout) as { ok: boolean; service: string; status: number };
      assert.deepEqual([body.ok, body.service, body.status], [true, 'porthole', 200]);
    });

    test('health is public; Authorization reaches porthole intact; the proxy sets X-Forwarded-*', async () => {
      const health = await visit(proxy.port, pki.caPem, '/_porthole/health');
      assert.deepEqual([health.status, JSON.parse(health.body)], [200, { status: 'ok' }]);
      // No credential: porthole refuses (the proxy neither authenticates nor exempts anyone).
      const anonymous = await visit(proxy.port, pki.caPem, '/anything');
      assert.equal(anonymous.status, 401);
      // A forged X-Forwarded-For from the visitor must not become the client address.
      const r = await visit(proxy.port, pki.caPem, '/echo?x=1', { authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '203.0.113.9' });
      assert.equal(r.status, 200, r.body);
      const echo = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.equal(echo.headers['x-porthole-ingress'], 'trusted-proxy');
      assert.equal(echo.headers['x-forwarded-proto'], 'https');
      assert.equal(echo.headers['x-forwarded-host'], `${NAME}:${proxy.port}`);
      assert.match(echo.headers['x-forwarded-for'] ?? '', /(^|, )127\.0\.0\.1$/);
      assert.equal(echo.headers['authorization'], undefined, "porthole's own bearer is not forwarded to the app");
    });

    test("the app's own Authorization header passes through the proxy and porthole unchanged", async () => {
      // Sign in once (token in the URL → 303 + session cookie), then send the app's bearer.
      const login = await visit(proxy.port, pki.caPem, `/?token=${TOKEN}`);
      assert.equal(login.status, 303);
      const cookie = String(login.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
      assert.match(cookie, /^__Host-porthole_session_/);
      const r = await visit(proxy.port, pki.caPem, '/echo', { cookie, authorization: 'Bearer app-own-token.abc' });
      assert.equal(r.status, 200, r.body);
      const echo = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.equal(echo.headers['authorization'], 'Bearer app-own-token.abc');
    });

    test('server-sent events arrive one by one, unbuffered', async () => {
      const connected = app.nextSse();
      const req = request({
        host: '127.0.0.1',
        port: proxy.port,
        servername: NAME,
        ca: pki.caPem,
        path: '/sse',
        headers: { host: `${NAME}:${proxy.port}`, authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
        agent: false,
      });
      req.on('error', () => {});
      const responded = once(req, 'response') as Promise<[IncomingMessage]>;
      req.end();
      const upstream = await connected;
      const [res] = await responded;
      try {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /text\/event-stream/);
        // Lock-step: each small event must reach the client before the next is written.
        for (let i = 0; i < 3; i++) {
          const chunk = nextChunk(res);
          upstream.write(`data: event ${i}\n\n`);
          assert.match(await chunk, new RegExp(`data: event ${i}`));
        }
      } finally {
        req.destroy();
      }
    });

    test('WebSocket upgrade works through the proxy', async () => {
      const ws = new WebSocket(`wss://${NAME}:${proxy.port}/ws`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        ca: pki.caPem,
        servername: NAME,
        // Dial the proxy on loopback whatever the name resolves to (it resolves nowhere).
        lookup: ((_h: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) =>
          o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) as unknown as LookupFunction,
      } as ClientOptions);
      ws.on('error', () => {});
      const messages: string[] = [];
      const waiter = (n: number) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`WebSocket: ${messages.length} messages within ${WAIT_MS} ms`)), WAIT_MS);
          const check = () => {
            if (messages.length >= n) {
              clearTimeout(timer);
              resolve();
            }
          };
          ws.on('message', (d) => {
            messages.push(String(d));
            check();
          });
          ws.once('close', () => reject(new Error('WebSocket closed')));
        });
      try {
        const got = waiter(2);
        await once(ws, 'open');
        ws.send('ping through the proxy');
        await got;
        const hello = JSON.parse(messages[0]!) as { hello: boolean; headers: Record<string, string> };
        assert.equal(hello.hello, true);
        assert.equal(hello.headers['x-porthole-ingress'], 'trusted-proxy');
        assert.equal(messages[1], 'ping through the proxy');
      } finally {
        ws.terminate();
      }
    });

    test('TLS_INVALID: a CA that did not sign the certificate, or a name it does not cover', async () => {
      const wrongCa = await proxyTest([url, '--connect', '127.0.0.1', '--ca', pki.otherCa], home.home);
      assert.equal(wrongCa.code, 1);
      assert.equal(cliCode(wrongCa.stderr), 'TLS_INVALID', wrongCa.stderr);
      const wrongName = await proxyTest([`https://other.example.test:${proxy.port}`, '--connect', '127.0.0.1', '--ca', pki.ca], home.home);
      assert.equal(wrongName.code, 1);
      assert.equal(cliCode(wrongName.stderr), 'TLS_INVALID', wrongName.stderr);
    });
  });
}

describe('reverse proxy: failure classes from real faults', { skip: skipUnlessExecutable('nginx') }, () => {
  const home = tempHome();
  let pki: Pki;
  let app: EchoApp;
  const proxies: RunningProxy[] = [];

  before(async () => {
    pki = makePki(home.home);
    app = await startEchoApp();
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    await app?.close();
    home.cleanup();
  });

  test('DNS_OR_CONN_REFUSED: nothing listens on the port', async () => {
    const port = await unusedPort();
    const r = await proxyTest([`https://${NAME}:${port}`, '--connect', '127.0.0.1', '--ca', pki.ca], home.home);
    assert.equal(r.code, 1);
    assert.equal(cliCode(r.stderr), 'DNS_OR_CONN_REFUSED', r.stderr);
    const json = await proxyTest([`https://${NAME}:${port}`, '--connect', '127.0.0.1', '--json'], home.home);
    assert.equal((JSON.parse(json.stdout) as { code: string }).code, 'DNS_OR_CONN_REFUSED');
  });

  test('TIMEOUT: a socket that accepts and never answers', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => sockets.add(s.on('error', () => {})));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as net.AddressInfo).port;
      const r = await proxyTest([`https://${NAME}:${port}`, '--connect', '127.0.0.1', '--ca', pki.ca, '--timeout', '0.5'], home.home);
      assert.equal(r.code, 1);
      assert.equal(cliCode(r.stderr), 'TIMEOUT', r.stderr);
      assert.ok(sockets.size >= 1, 'the probe connected');
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  test('AUTH_BLOCKED: the proxy demands its own authentication (nginx auth_basic)', async () => {
    const dir = join(home.home, 'nginx-auth');
    const proxy = await startReverseProxy('nginx', dir, async (port) => {
      // Someone put the whole site behind basic auth, /_porthole/ping included.
      const conf = await generated('nginx', port, `127.0.0.1:${app.port}`, pki, home.home);
      writeFileSync(join(dir, 'htpasswd'), 'someone:{PLAIN}secret\n');
      return conf.replace('location / {', `location / {\n        auth_basic "private";\n        auth_basic_user_file ${dir}/htpasswd;`);
    });
    proxies.push(proxy);
    const r = await proxyTest([`https://${NAME}:${proxy.port}`, '--connect', '127.0.0.1', '--ca', pki.ca], home.home);
    assert.equal(r.code, 1);
    assert.equal(cliCode(r.stderr), 'AUTH_BLOCKED', r.stderr);
  });

  test('NOT_PORTHOLE: the proxy is in front of some other app, or its upstream is down', async () => {
    const proxy = await startReverseProxy('nginx', join(home.home, 'nginx-other'), (port) =>
      generated('nginx', port, `127.0.0.1:${app.port}`, pki, home.home),
    );
    proxies.push(proxy);
    const other = await proxyTest([`https://${NAME}:${proxy.port}`, '--connect', '127.0.0.1', '--ca', pki.ca], home.home);
    assert.equal(other.code, 1);
    assert.equal(cliCode(other.stderr), 'NOT_PORTHOLE', other.stderr);
    assert.match(other.stderr, /answered 200/);

    const closed = await unusedPort();
    const down = await startReverseProxy('nginx', join(home.home, 'nginx-down'), (port) =>
      generated('nginx', port, `127.0.0.1:${closed}`, pki, home.home),
    );
    proxies.push(down);
    const r = await proxyTest([`https://${NAME}:${down.port}`, '--connect', '127.0.0.1', '--ca', pki.ca], home.home);
    assert.equal(r.code, 1);
    assert.equal(cliCode(r.stderr), 'NOT_PORTHOLE', r.stderr);
    assert.match(r.stderr, /answered 502/);
  });
});
