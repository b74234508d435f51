// auth.mode = "trusted-proxy" across network namespaces: the gateway (`porthole serve`) and
// its app in one namespace; a real nginx doing the sign-in (HTTP Basic, standing in for an
// SSO) in a "proxy" namespace whose address is the only trusted proxy; and an "attacker"
// namespace on a second veth that sends the very same identity headers straight to the
// gateway. Only what nginx asserts signs anyone in. Needs root, iproute2 and nginx; skipped
// otherwise (failed when PORTHOLE_TEST_REQUIRE_ALL=1).
import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { verifyIdentity } from '../../src/gateway/identity.js';
import { cleanEnv, runCli, type Served, tempHome } from '../helpers/cli.js';
import {
  createPair,
  type NetnsApp,
  type NetnsPair,
  netnsUnavailable,
  type NsResponse,
  requestFrom,
  startCliIn,
  startEchoAppIn,
} from '../helpers/netns.js';
import { findExecutable, requireAll } from '../helpers/peers.js';
import { tempDir } from '../helpers/servers.js';

const execFileP = promisify(execFile);
const ip = (args: string[]) => execFileP('ip', args, { timeout: 10_000 });

const unavailable = (await netnsUnavailable()) ?? (findExecutable('nginx') ? undefined : 'nginx not installed');
const skip = unavailable !== undefined && !requireAll ? `needs network namespaces and nginx: ${unavailable}` : false;

/** nginx listens here inside the proxy namespace (a fresh namespace: nothing else uses it). */
const NGINX_PORT = 8080;

interface Echo {
  url: string;
  headers: Record<string, string | undefined>;
}

function errorCode(r: NsResponse): string | undefined {
  try {
    return (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

function echoOf(r: NsResponse): Echo {
  assert.equal(r.status, 200, `expected the app's answer, got ${r.status} ${r.body}`);
  return JSON.parse(r.body) as Echo;
}

const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

// One HTTP request from inside a namespace (the attacker's, which is not one of the pair's).
const HTTP_CLIENT = `
const http = require('node:http');
const o = JSON.parse(process.argv[1]);
const req = http.request(o.url, { method: o.method, headers: o.headers, agent: false, timeout: 10000 }, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') })));
});
req.on('timeout', () => req.destroy(new Error('request timed out')));
req.on('error', (e) => { process.stderr.write(String(e && e.stack || e)); process.exitCode = 1; });
req.end();
`;

describe('trusted-proxy mode: a real proxy namespace and an attacker namespace', { skip }, () => {
  let pair: NetnsPair | undefined;
  let app: NetnsApp | undefined;
  let gw: Served | undefined;
  let nginx: ChildProcess | undefined;
  const home = tempHome();
  const nginxDir = tempDir('porthole-nginx-');
  /** The attacker's namespace, on its own veth into the gateway's namespace. */
  const atk = `ph-atk-${process.pid}-${randomBytes(3).toString('hex')}`;
  let atkSubnet = '';
  let port = 0;

  function net(): NetnsPair {
    assert.ok(pair, 'namespaces not created');
    return pair;
  }

  async function fromAttacker(url: string, headers: Record<string, string>): Promise<NsResponse> {
    const { hostname } = new URL(url);
    assert.ok(hostname.startsWith(atkSubnet), `attacker traffic stays inside its subnet (${hostname})`);
    const { stdout } = await execFileP('ip', ['netns', 'exec', atk, process.execPath, '-e', HTTP_CLIENT, JSON.stringify({ url, method: 'GET', headers })], {
      env: cleanEnv({}),
      timeout: 20_000,
    });
    return JSON.parse(stdout) as NsResponse;
  }

  before(async () => {
    if (unavailable !== undefined) throw new Error(`PORTHOLE_TEST_REQUIRE_ALL=1 but: ${unavailable}`);
    pair = await createPair();
    // The attacker: a third namespace on a second, unrelated 10.x subnet.
    atkSubnet = `10.${randomInt(0, 256)}.${randomInt(0, 256)}.`;
    if (atkSubnet === pair.prefix) atkSubnet = `10.${randomInt(0, 256)}.${(Number(pair.prefix.split('.')[2]) + 1) % 256}.`;
    await ip(['netns', 'add', atk]);
    await ip(['-n', pair.gw, 'link', 'add', 'ph2', 'type', 'veth', 'peer', 'name', 'ph3', 'netns', atk]);
    await ip(['-n', pair.gw, 'addr', 'add', `${atkSubnet}1/24`, 'dev', 'ph2']);
    await ip(['-n', atk, 'addr', 'add', `${atkSubnet}2/24`, 'dev', 'ph3']);
    await ip(['-n', pair.gw, 'link', 'set', 'ph2', 'up']);
    await ip(['-n', atk, 'link', 'set', 'ph3', 'up']);
    await ip(['-n', atk, 'link', 'set', 'lo', 'up']);

    app = await startEchoAppIn(pair, pair.gw);
    writeFileSync(
      join(home.home, 'porthole.toml'),
      ['version = 1', '[auth.trusted_proxy]', 'allow_users = ["alice"]', ''].join('\n'),
      { mode: 0o600 },
    );
    gw = await startCliIn(
      pair,
      pair.gw,
      [
        'serve', '--target', app.url, '--host', '0.0.0.0', '--port', '0', '--json',
        '--auth-mode', 'trusted-proxy', '--trusted-proxies', pair.clAddress,
      ],
      { PORTHOLE_HOME: home.home },
    );
    port = gw.event.port;

    // nginx in the proxy namespace: Basic auth stands in for the SSO; it names the user in
    // X-Forwarded-User (overwriting whatever the client sent) and appends to X-Forwarded-For.
    const d = nginxDir.dir;
    writeFileSync(join(d, 'htpasswd'), 'alice:{PLAIN}alice-secret-pw\nmallory:{PLAIN}mallory-secret-pw\n', { mode: 0o600 });
    writeFileSync(
      join(d, 'nginx.conf'),
      [
        'daemon off;',
        'master_process on;',
        'worker_processes 1;',
        'user root;',
        `pid ${d}/nginx.pid;`,
        'error_log stderr notice;',
        'events { worker_connections 64; }',
        'http {',
        `  access_log ${d}/access.log;`,
        `  client_body_temp_path ${d}/client_body;`,
        `  proxy_temp_path ${d}/proxy;`,
        `  fastcgi_temp_path ${d}/fastcgi;`,
        `  uwsgi_temp_path ${d}/uwsgi;`,
        `  scgi_temp_path ${d}/scgi;`,
        '  server {',
        `    listen 127.0.0.1:${NGINX_PORT};`,
        '    location / {',
        '      auth_basic "sso";',
        `      auth_basic_user_file ${d}/htpasswd;`,
        '      proxy_set_header X-Forwarded-User $remote_user;',
        '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
        '      proxy_set_header Authorization "";',
        `      proxy_pass http://${pair.gwAddress}:${port};`,
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    nginx = pair.exec(pair.cl, findExecutable('nginx')!, ['-p', d, '-c', join(d, 'nginx.conf'), '-e', join(d, 'startup.log')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nginx did not start:\n${err}`)), 15_000);
      nginx!.stderr!.setEncoding('utf8').on('data', (s: string) => {
        err += s;
        if (/start worker processes/.test(err)) {
          clearTimeout(timer);
          resolve();
        }
      });
      nginx!.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nginx exited (${code}):\n${err}`));
      });
    });
  });

  after(async () => {
    if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
      const exited = once(nginx, 'exit');
      nginx.kill('SIGTERM');
      await exited;
    }
    for (const p of [gw, app]) await p?.stop().catch(() => undefined);
    await pair?.destroy();
    const pids = await ip(['netns', 'pids', atk]).then((r) => r.stdout, () => '');
    for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await ip(['netns', 'delete', atk]).catch(() => undefined);
    nginxDir.cleanup();
    home.cleanup();
  });

  function identityKey(): Buffer {
    return Buffer.from(readFileSync(join(home.home, 'secrets', 'identity-key'), 'utf8').trim(), 'base64url');
  }

  test('signed in at the proxy: the app sees the proxy-asserted user, whatever the client claimed', async () => {
    const p = net();
    const r = await requestFrom(p, p.cl, {
      url: `http://127.0.0.1:${NGINX_PORT}/page`,
      headers: { ...basic('alice', 'alice-secret-pw'), 'x-forwarded-user': 'admin', 'x-forwarded-for': '6.6.6.6' },
    });
    const echo = echoOf(r);
    const id = verifyIdentity(echo.headers['x-porthole-identity'], identityKey());
    assert.equal(id?.sub, 'alice', 'nginx overwrote the client’s own X-Forwarded-User');
    assert.equal(id?.cred, 'trusted-proxy');
    assert.equal(echo.headers['x-porthole-ingress'], 'trusted-proxy');
    assert.equal(echo.headers['x-forwarded-user'], undefined);
    assert.equal(echo.headers.authorization, undefined);
    // The chain the app gets: the client's claim, what nginx saw, what porthole saw.
    assert.equal(echo.headers['x-forwarded-for'], `6.6.6.6, 127.0.0.1, ${p.clAddress}`);
  });

  test('a user the proxy signs in but allow_users does not list is refused', async () => {
    const p = net();
    const r = await requestFrom(p, p.cl, { url: `http://127.0.0.1:${NGINX_PORT}/page`, headers: basic('mallory', 'mallory-secret-pw') });
    assert.equal(r.status, 403, r.body);
    assert.equal(errorCode(r), 'USER_NOT_ALLOWED');
  });

  test('the attacker sends the same headers straight to the gateway: nobody is signed in', async () => {
    const url = `http://${atkSubnet}1:${port}/page`;
    const attempts: Record<string, string>[] = [
      { 'x-forwarded-user': 'alice' },
      { 'x-forwarded-user': 'alice', 'x-forwarded-for': net().clAddress },
      { 'x-forwarded-user': 'alice', 'x-real-ip': net().clAddress, forwarded: `for=${net().clAddress}` },
    ];
    for (const headers of attempts) {
      const r = await fromAttacker(url, headers);
      assert.equal(r.status, 401, `${JSON.stringify(headers)}: ${r.body}`);
      assert.equal(errorCode(r), 'AUTH_REQUIRED');
    }
    // Nor with porthole's own token, which this mode does not accept remotely.
    const token = readFileSync(join(home.home, 'secrets', 'token'), 'utf8').trim();
    const withToken = await fromAttacker(url, { authorization: `Bearer ${token}` });
    assert.equal(withToken.status, 401, withToken.body);
    assert.equal(errorCode(withToken), 'CREDENTIAL_NOT_ACCEPTED');
  });

  test('from the trusted address, a request naming no client address fails closed', async () => {
    const p = net();
    const url = `http://${p.gwAddress}:${port}/page`;
    const r = await requestFrom(p, p.cl, { url, headers: { 'x-forwarded-user': 'alice' } });
    assert.equal(r.status, 400, r.body);
    assert.equal(errorCode(r), 'CLIENT_ADDRESS_UNKNOWN');
  });

  test('health stays public; the CLI over the Unix socket still works', async () => {
    const r = await fromAttacker(`http://${atkSubnet}1:${port}/_porthole/health`, {});
    assert.equal(r.status, 200, r.body);
    // The socket's file permissions are the credential: the master token is not needed.
    const status = await runCli(['status', '--json'], { PORTHOLE_HOME: home.home });
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { auth: { mode: string } }).auth.mode, 'trusted-proxy');
  });
});
