// End-to-end: the real `porthole` CLI (bin/porthole.js → dist/) as a child process —
// help, init/token, secret files, config errors, targets, listen failures, status, the
// --json lifecycle, IPv6 and --insecure-no-auth. Each gateway gets its own PORTHOLE_HOME.
// Asserts on exit codes, `[CODE]` in stderr and `error.code` in bodies, never on wording.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { type Env, runCli, type Served, spawnCli, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { cliCode, defer, errorCodeOf } from '../helpers/e2e.js';
import { closeServer, fetchRaw } from '../helpers/servers.js';

const TOKEN_RE = /^ph_[A-Za-z0-9_-]{43}$/;
const newToken = () => `ph_${randomBytes(32).toString('base64url')}`;
const requireAll = process.env['PORTHOLE_TEST_REQUIRE_ALL'] === '1';

let app: EchoApp;
before(async () => {
  app = await startEchoApp();
});
after(async () => {
  await app.close();
});

/** A fresh PORTHOLE_HOME, removed after the test. */
function home(t: TestContext): string {
  const h = tempHome();
  defer(t, () => h.cleanup());
  return h.home;
}

/** A running gateway, stopped after the test. */
async function serve(t: TestContext, args: string[], env: Env): Promise<Served> {
  const g = await startCli(['serve', '--port', '0', ...args, '--json'], env);
  defer(t, () => g.stop());
  return g;
}

/** GET through the gateway, optionally with a bearer token. */
function get(port: number, path: string, token?: string, host = '127.0.0.1') {
  return fetchRaw({ host, port, path, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

function assertFails(r: { code: number | null; stderr: string; timedOut: boolean }, code: string, exit?: number): void {
  assert.equal(r.timedOut, false, `expected ${code}, but the command kept running:\n${r.stderr}`);
  assert.notEqual(r.code, 0, `expected a failure with ${code}:\n${r.stderr}`);
  if (exit !== undefined) assert.equal(r.code, exit, r.stderr);
  assert.equal(cliCode(r.stderr), code, r.stderr);
}

describe('help', () => {
  it('`porthole --help` lists the commands', async () => {
    const r = await runCli(['--help'], {});
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['serve', 'init', 'token', 'config', 'status']) assert.match(r.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'));
  });

  it('`porthole serve --help` lists the DESIGN flags and warns that --auth-token is visible in argv', async () => {
    const r = await runCli(['serve', '--help'], {});
    assert.equal(r.code, 0, r.stderr);
    const flags = [
      '--target',
      '--host',
      '--port',
      '--config',
      '--json',
      '--auth-mode',
      '--insecure-no-auth',
      '--auth-token-file',
      '--auth-token',
      '--no-loopback-exempt',
      '--allowed-origins',
      '--public-url',
      '--trusted-proxies',
    ];
    for (const f of flags) assert.match(r.stdout, new RegExp(`^\\s+${f}\\b`, 'm'), `missing ${f}`);
    // The --auth-token entry, wrapped lines joined, up to the next option.
    const entry = /^\s+--auth-token <[^>]+>([\s\S]*?)(?=^\s+--)/m.exec(r.stdout)?.[1]?.replace(/\s+/g, ' ') ?? '';
    assert.match(entry, /other (local )?users|process list/i, `--auth-token help does not warn about argv: ${entry}`);
  });
});

describe('init and token', () => {
  it('init creates secrets/token 0600 in a 0700 directory; token show prints only the token; init keeps it', async (t) => {
    const h = home(t);
    const env = { PORTHOLE_HOME: h };
    const init = await runCli(['init'], env);
    assert.equal(init.code, 0, init.stderr);
    const file = join(h, 'secrets', 'token');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(h, 'secrets')).mode & 0o777, 0o700);

    const show = await runCli(['token', 'show'], env);
    assert.equal(show.code, 0, show.stderr);
    const lines = show.stdout.split('\n');
    assert.equal(lines.length, 2, `stdout must be exactly one line: ${JSON.stringify(show.stdout)}`);
    assert.equal(lines[1], '');
    assert.match(lines[0]!, TOKEN_RE);

    const again = await runCli(['init'], env);
    assert.equal(again.code, 0, again.stderr);
    const show2 = await runCli(['token', 'show'], env);
    assert.equal(show2.code, 0, show2.stderr);
    assert.equal(show2.stdout, show.stdout, 'a second init must keep the token');
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('a deleted token is TOKEN_MISSING for `token show` and `serve`, never regenerated', async (t) => {
    const h = home(t);
    const env = { PORTHOLE_HOME: h };
    assert.equal((await runCli(['init'], env)).code, 0);
    const file = join(h, 'secrets', 'token');
    rmSync(file);

    assertFails(await runCli(['token', 'show'], env), 'TOKEN_MISSING');
    const r = await runCli(['serve', '--target', app.url, '--port', '0'], env);
    assertFails(r, 'TOKEN_MISSING');
    assert.equal(r.stdout, '');
    assert.equal(existsSync(file), false, 'serve must not silently issue a new token');
  });

  it('a group/world-readable secrets/token stops serve with SECRET_FILE_INSECURE naming the file', async (t) => {
    const h = home(t);
    const env = { PORTHOLE_HOME: h };
    assert.equal((await runCli(['init'], env)).code, 0);
    const file = join(h, 'secrets', 'token');
    chmodSync(file, 0o644);
    const token = readFileSync(file, 'utf8').trim();

    const r = await runCli(['serve', '--target', app.url, '--port', '0'], env);
    assertFails(r, 'SECRET_FILE_INSECURE');
    assert.ok(r.stderr.includes(file), `the message must name ${file}:\n${r.stderr}`);
    assert.ok(!r.stderr.includes(token) && !r.stdout.includes(token), 'the token must not be printed');
    assertFails(await runCli(['token', 'show'], env), 'SECRET_FILE_INSECURE');
  });

  it('a token from [auth] token_file or PORTHOLE_AUTH_TOKEN: token show prints it, token rotate refuses (TOKEN_FIXED)', async (t) => {
    const h = home(t);
    const supplied = newToken();
    writeFileSync(join(h, 'tok'), `${supplied}\n`, { mode: 0o600 });
    writeFileSync(join(h, 'porthole.toml'), 'version = 1\n[auth]\ntoken_file = "tok"\n');
    const env = { PORTHOLE_HOME: h };
    const show = await runCli(['token', 'show'], env);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(show.stdout.trim(), supplied);
    assertFails(await runCli(['token', 'rotate'], env), 'TOKEN_FIXED');
    assert.equal(readFileSync(join(h, 'tok'), 'utf8').trim(), supplied);
    assert.equal(existsSync(join(h, 'secrets', 'token')), false, 'a store token nobody would use was issued');

    const other = home(t);
    const fromEnv = newToken();
    assertFails(await runCli(['token', 'rotate'], { PORTHOLE_HOME: other, PORTHOLE_AUTH_TOKEN: fromEnv }), 'TOKEN_FIXED');
    assert.equal((await runCli(['token', 'show'], { PORTHOLE_HOME: other, PORTHOLE_AUTH_TOKEN: fromEnv })).stdout.trim(), fromEnv);
  });
});

describe('tunnel secret set', () => {
  it('with no gateway running, stores the secret from stdin in the store (0600); a bad one is INVALID_ARGUMENT', async (t) => {
    const h = home(t);
    const env = { PORTHOLE_HOME: h };
    const secret = 'Rs-registration-secret-0123456789';
    const r = await runCli(['tunnel', 'secret', 'set'], env, 20_000, `${secret}\n`);
    assert.equal(r.code, 0, r.stderr);
    const file = join(h, 'secrets', 'tunnel-registration-secret');
    assert.equal(readFileSync(file, 'utf8').trim(), secret);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), 'the secret must not be printed');
    assertFails(await runCli(['tunnel', 'secret', 'set'], env, 20_000, 'short\n'), 'INVALID_ARGUMENT');
    assert.equal(readFileSync(file, 'utf8').trim(), secret, 'a refused secret leaves the stored one');
  });
});

describe('ssh-tunnel', () => {
  it('a --ssh-config that does not exist is INVALID_ARGUMENT (exit 2) before a command is printed', async (t) => {
    const r = await runCli(['ssh-tunnel', '--target', 'me@desk.example', '--ssh-config', join(home(t), 'no-such-config')], { PORTHOLE_HOME: home(t) });
    assertFails(r, 'INVALID_ARGUMENT', 2);
    assert.equal(r.stdout, '');
  });
});

describe('supplied tokens', () => {
  it('--auth-token-file: 0644 is SECRET_FILE_INSECURE; 0600 starts, the token is neither echoed nor "generated"', async (t) => {
    const h = home(t);
    const token = newToken();
    const file = join(h, 'gateway-token');
    writeFileSync(file, `${token}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    const args = ['--target', app.url, '--auth-token-file', file, '--no-loopback-exempt'];

    const bad = await runCli(['serve', '--port', '0', ...args], { PORTHOLE_HOME: h });
    assertFails(bad, 'SECRET_FILE_INSECURE');
    assert.ok(bad.stderr.includes(file), bad.stderr);
    assert.ok(!bad.stderr.includes(token), 'the token must not be printed');

    chmodSync(file, 0o600);
    const g = await serve(t, args, { PORTHOLE_HOME: h });
    assert.equal(g.event.generatedToken, undefined);
    assert.ok(!g.lines.join('\n').includes(token), 'the JSON event must not carry a supplied token');
    assert.ok(!g.stderr().includes(token), 'the banner must not show a supplied token');

    const ok = await get(g.event.port, '/from-file', token);
    assert.equal(ok.status, 200, ok.text);
    const wrong = await get(g.event.port, '/from-file', newToken());
    assert.equal(wrong.status, 401);
    assert.equal(errorCodeOf(wrong.text), 'AUTH_INVALID');
  });

  it('a weak PORTHOLE_AUTH_TOKEN exits 2 with TOKEN_WEAK and does not echo it', async (t) => {
    for (const weak of ['ph_Sh0rtXq9', 'short', 'Zq7notAporth0leToken_aaaaaaaaaaaaaaaaaaaaaaaaaaaa']) {
      const r = await runCli(['serve', '--target', app.url, '--port', '0'], {
        PORTHOLE_HOME: home(t),
        PORTHOLE_AUTH_TOKEN: weak,
      });
      assertFails(r, 'TOKEN_WEAK', 2);
      // "short" is also a word a message may use ("too short"): look for it as a quoted value only.
      const leaked = weak === 'short' ? /["'`=]short\b/.test(r.stderr) : r.stderr.includes(weak);
      assert.ok(!leaked && !r.stdout.includes(weak), `the weak token must not be printed:\n${r.stderr}`);
    }
  });

  it('--auth-token works and beats PORTHOLE_AUTH_TOKEN', async (t) => {
    const flagToken = newToken();
    const envToken = newToken();
    const g = await serve(t, ['--target', app.url, '--auth-token', flagToken, '--no-loopback-exempt'], {
      PORTHOLE_HOME: home(t),
      PORTHOLE_AUTH_TOKEN: envToken,
    });
    assert.equal(g.event.generatedToken, undefined);
    assert.ok(!g.stderr().includes(flagToken) && !g.lines.join('\n').includes(flagToken));

    const viaFlag = await get(g.event.port, '/_porthole/api/status', flagToken);
    assert.equal(viaFlag.status, 200, viaFlag.text);
    const viaEnv = await get(g.event.port, '/_porthole/api/status', envToken);
    assert.equal(viaEnv.status, 401);
    assert.equal(errorCodeOf(viaEnv.text), 'AUTH_INVALID');
    const none = await get(g.event.port, '/app');
    assert.equal(none.status, 401);
    assert.equal(errorCodeOf(none.text), 'AUTH_REQUIRED');
  });

  it('PORTHOLE_AUTH_TOKEN alone is used', async (t) => {
    const envToken = newToken();
    const g = await serve(t, ['--target', app.url, '--no-loopback-exempt'], { PORTHOLE_HOME: home(t), PORTHOLE_AUTH_TOKEN: envToken });
    assert.equal(g.event.generatedToken, undefined);
    assert.equal((await get(g.event.port, '/_porthole/api/status', envToken)).status, 200);
  });
});

describe('porthole.toml problems', () => {
  async function serveWith(t: TestContext, toml: string) {
    const h = home(t);
    const file = join(h, 'porthole.toml');
    writeFileSync(file, toml);
    const r = await runCli(['serve', '--target', app.url, '--port', '0'], { PORTHOLE_HOME: h });
    return { r, file };
  }

  it('an unknown key: exit 2, CONFIG_INVALID, naming the key and the file', async (t) => {
    const { r, file } = await serveWith(t, '[gateway]\nhost = "127.0.0.1"\nbogus_key = 1\n');
    assertFails(r, 'CONFIG_INVALID', 2);
    assert.ok(r.stderr.includes('bogus_key'), r.stderr);
    assert.ok(r.stderr.includes(file), r.stderr);
  });

  it('several problems are reported together', async (t) => {
    const toml = '[gateway]\nport = "not-a-port"\ncolour = "blue"\n[auth]\nmode = "magic"\n[nonsense]\nx = 1\n';
    const { r } = await serveWith(t, toml);
    assertFails(r, 'CONFIG_INVALID', 2);
    for (const key of ['gateway.port', 'colour', 'auth.mode', 'nonsense']) assert.ok(r.stderr.includes(key), `${key} not reported:\n${r.stderr}`);
  });

  it('a bad value of a config-backed flag is reported with the file\'s problems, not alone', async (t) => {
    const h = home(t);
    writeFileSync(join(h, 'porthole.toml'), '[gateway]\nport = 80.5\nhots = "x"\n');
    const r = await runCli(['serve', '--target', app.url, '--auth-mode', 'magic', '--tls', 'bogus', '--tailscale', 'on'], { PORTHOLE_HOME: h });
    assertFails(r, 'CONFIG_INVALID', 2);
    for (const what of ['gateway.port', '80.5', 'gateway.hots', 'flag --auth-mode', '"magic"', 'flag --tls', 'flag --tailscale']) {
      assert.ok(r.stderr.includes(what), `${what} not reported:\n${r.stderr}`);
    }
  });

  it('a credential pasted as a key is not echoed in the unknown-key error', async (t) => {
    const secret = newToken();
    const { r } = await serveWith(t, `[gateway]\n${secret} = 1\n`);
    assertFails(r, 'CONFIG_INVALID', 2);
    assert.ok(!r.stderr.includes(secret.slice(3, 15)), r.stderr);
  });

  it('a subdomain the relay would refuse (too short, reserved) is CONFIG_INVALID', async (t) => {
    for (const name of ['ab', 'www']) {
      const { r } = await serveWith(t, `[tunnel]\nsubdomain = "${name}"\n`);
      assertFails(r, 'CONFIG_INVALID', 2);
      assert.ok(r.stderr.includes('tunnel.subdomain'), r.stderr);
    }
  });

  it('broken TOML: exit 2, CONFIG_INVALID', async (t) => {
    const { r, file } = await serveWith(t, '[gateway\nport = 1\n');
    assertFails(r, 'CONFIG_INVALID', 2);
    assert.ok(r.stderr.includes(file), r.stderr);
  });

  it('a token in the file: CONFIG_SECRET_IN_FILE, and the value is never printed', async (t) => {
    for (const where of ['[auth]\ntoken', 'token']) {
      const secret = newToken();
      const { r } = await serveWith(t, `${where} = "${secret}"\n`);
      assertFails(r, 'CONFIG_SECRET_IN_FILE', 2);
      assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), `the secret leaked:\n${r.stderr}`);
      // Not even a recognisable part of it.
      assert.ok(!r.stderr.includes(secret.slice(3, 15)), r.stderr);
    }
  });
});

describe('config check', () => {
  it('--json shows values with their sources: file, env, default', async (t) => {
    const h = home(t);
    writeFileSync(join(h, 'porthole.toml'), '[gateway]\nport = 7123\n');
    const r = await runCli(['config', 'check', '--json'], { PORTHOLE_HOME: h, PORTHOLE_HOST: 'localhost' });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { values: Record<string, { value: unknown; source: string }> };
    assert.deepEqual(report.values['gateway.port'], { value: 7123, source: 'file' });
    assert.deepEqual(report.values['gateway.host'], { value: 'localhost', source: 'env' });
    assert.equal(report.values['auth.mode']?.source, 'default');
    assert.equal(report.values['auth.mode']?.value, 'token');
  });

  it('refuses what remote commands would: a pin on an http:// [remote] url', async (t) => {
    const h = home(t);
    writeFileSync(join(h, 'porthole.toml'), `[remote]\nurl = "http://127.0.0.1:7070"\ntls_pin = "sha256/${Buffer.alloc(32, 7).toString('base64')}"\n`);
    assertFails(await runCli(['config', 'check'], { PORTHOLE_HOME: h }), 'CONFIG_INVALID', 2);
  });

  it('a malformed --pin is a usage error (exit 2) in remote mode', async (t) => {
    const h = home(t);
    const r = await runCli(['call', 'health', '--pin', 'bogus'], { PORTHOLE_HOME: h, PORTHOLE_URL: 'https://127.0.0.1:1', PORTHOLE_TOKEN: newToken() });
    assertFails(r, 'TLS_PIN_INVALID', 2);
  });

  it('exits 2 on a broken file', async (t) => {
    const h = home(t);
    writeFileSync(join(h, 'porthole.toml'), 'version = = 1\n');
    const r = await runCli(['config', 'check'], { PORTHOLE_HOME: h });
    assertFails(r, 'CONFIG_INVALID', 2);
    const j = await runCli(['config', 'check', '--json'], { PORTHOLE_HOME: h });
    assertFails(j, 'CONFIG_INVALID', 2);
  });
});

describe('targets', () => {
  it('--target nonsense://x: exit 2, TARGET_INVALID', async (t) => {
    const r = await runCli(['serve', '--target', 'nonsense://x', '--port', '0'], { PORTHOLE_HOME: home(t) });
    assertFails(r, 'TARGET_INVALID', 2);
  });

  it('the shorthand --target 3000 is accepted', async (t) => {
    const g = await serve(t, ['--target', '3000'], { PORTHOLE_HOME: home(t) });
    assert.equal(g.event.event, 'listening');
    assert.equal(typeof g.event.port, 'number');
  });

  it('a target nobody listens on answers 502 TARGET_UNAVAILABLE', async (t) => {
    const g = await serve(t, ['--target', 'unix:/nonexistent/x.sock'], { PORTHOLE_HOME: home(t) });
    const r = await get(g.event.port, '/anything', g.event.generatedToken);
    assert.equal(r.status, 502);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.equal(errorCodeOf(r.text), 'TARGET_UNAVAILABLE');
  });
});

describe('listen failures', () => {
  it('a port in use: non-zero exit, ADDRESS_IN_USE', async (t) => {
    const blocker = net.createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    defer(t, () => closeServer(blocker));
    const port = (blocker.address() as net.AddressInfo).port;
    const h = home(t);
    const r = await runCli(['serve', '--target', app.url, '--port', String(port)], { PORTHOLE_HOME: h });
    assertFails(r, 'ADDRESS_IN_USE');
    // A fresh home's token is not issued by a start that failed (nobody saw it), nor by one
    // refused before the gateway (a bad target): the next start generates and shows its own.
    assertFails(await runCli(['serve', '--target', 'abc', '--port', '0'], { PORTHOLE_HOME: h }), 'TARGET_INVALID');
    assert.equal(existsSync(join(h, 'secrets', 'token')), false);
    assert.doesNotMatch(existsSync(join(h, 'state.json')) ? readFileSync(join(h, 'state.json'), 'utf8') : '', /"token"/);
    const g = await serve(t, ['--target', app.url], { PORTHOLE_HOME: h });
    assert.match(String(g.event.generatedToken), TOKEN_RE);
  });

  it('a second gateway on the same PORTHOLE_HOME: GATEWAY_ALREADY_RUNNING, and the first keeps working', async (t) => {
    const h = home(t);
    const first = await serve(t, ['--target', app.url], { PORTHOLE_HOME: h });
    const r = await runCli(['serve', '--target', app.url, '--port', '0'], { PORTHOLE_HOME: h });
    assertFails(r, 'GATEWAY_ALREADY_RUNNING');
    // The loser must not have removed the winner's socket.
    const s = await runCli(['status', '--json'], { PORTHOLE_HOME: h });
    assert.equal(s.code, 0, s.stderr);
    assert.equal((JSON.parse(s.stdout) as { url: string }).url, first.event.url);
    assert.equal((await get(first.event.port, '/still', first.event.generatedToken)).status, 200);
  });
});

describe('status', () => {
  it('without a gateway: exit 3, GATEWAY_NOT_RUNNING', async (t) => {
    const h = home(t);
    assertFails(await runCli(['status'], { PORTHOLE_HOME: h }), 'GATEWAY_NOT_RUNNING', 3);
    assertFails(await runCli(['status', '--json'], { PORTHOLE_HOME: h }), 'GATEWAY_NOT_RUNNING', 3);
  });

  it('with a gateway: shows the url; --json has url and auth and never the token', async (t) => {
    const h = home(t);
    const g = await serve(t, ['--target', app.url], { PORTHOLE_HOME: h });
    const token = g.event.generatedToken;
    assert.match(token ?? '', TOKEN_RE);

    const text = await runCli(['status'], { PORTHOLE_HOME: h });
    assert.equal(text.code, 0, text.stderr);
    assert.ok(text.stdout.includes(g.event.url), text.stdout);
    assert.ok(!text.stdout.includes(token!));

    const json = await runCli(['status', '--json'], { PORTHOLE_HOME: h });
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(s['url'], g.event.url);
    assert.ok(s['auth'] !== undefined && typeof s['auth'] === 'object', json.stdout);
    assert.ok(!json.stdout.includes(token!), 'status must never show the token');
  });
});

describe('serve --json lifecycle', () => {
  it('first line is the listening event; SIGTERM exits 0 after {"event":"stopped"}; stdout is JSON lines only', async (t) => {
    const statusHome = home(t);
    const g = await serve(t, ['--target', app.url], { PORTHOLE_HOME: statusHome });
    const e = g.event;
    assert.equal(e.event, 'listening');
    assert.equal(e.host, '127.0.0.1');
    assert.ok(Number.isInteger(e.port) && e.port > 0);
    assert.match(e.url, new RegExp(`^http://127\\.0\\.0\\.1:${e.port}/?$`));
    assert.equal((await get(e.port, '/_porthole/health')).status, 200);
    // A reader of `status` that is gone before it writes (`| head -1`) is no crash: exit 0, no stack.
    const early = spawnCli(['status'], { PORTHOLE_HOME: statusHome });
    early.stdout.destroy();
    let earlyErr = '';
    early.stderr.setEncoding('utf8').on('data', (d: string) => (earlyErr += d));
    const [earlyCode] = (await once(early, 'close')) as [number | null];
    assert.equal(earlyCode, 0, earlyErr);
    assert.doesNotMatch(earlyErr, /EPIPE|at /);

    const code = await g.stop();
    assert.equal(code, 0, g.stderr());
    assert.ok(g.lines.length >= 2, `expected a stopped event: ${JSON.stringify(g.lines)}`);
    const parsed = g.lines.map((l) => {
      assert.doesNotThrow(() => JSON.parse(l), `stdout line is not JSON: ${JSON.stringify(l)}`);
      return JSON.parse(l) as Record<string, unknown>;
    });
    assert.equal(parsed[0]!['event'], 'listening');
    assert.deepEqual(parsed.at(-1), { event: 'stopped' });
    assert.ok(!parsed.some((p) => p['event'] === 'tunnel'), `a tunnel event from a gateway without a tunnel: ${JSON.stringify(parsed)}`);
    // The banner went to stderr.
    assert.ok(g.stderr().includes(e.url));
  });

  it('after a stop the socket is gone: status exits 3', async (t) => {
    const h = home(t);
    const g = await serve(t, ['--target', app.url], { PORTHOLE_HOME: h });
    assert.equal(await g.stop(), 0, g.stderr());
    assertFails(await runCli(['status'], { PORTHOLE_HOME: h }), 'GATEWAY_NOT_RUNNING', 3);
  });

  it('a socket left by a killed gateway does not block the next start', async (t) => {
    const h = home(t);
    const first = await serve(t, ['--target', app.url], { PORTHOLE_HOME: h });
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(existsSync(join(h, 'run', 'gateway.sock')), 'expected the killed gateway to leave its socket behind');
    const second = await serve(t, ['--target', app.url], { PORTHOLE_HOME: h });
    const s = await runCli(['status', '--json'], { PORTHOLE_HOME: h });
    assert.equal(s.code, 0, s.stderr);
    assert.equal((JSON.parse(s.stdout) as { url: string }).url, second.event.url);
  });

  it('SIGTERM with an open SSE stream: exits 0 within 5 s', async (t) => {
    const g = await serve(t, ['--target', app.url], { PORTHOLE_HOME: home(t) });
    const appSide = app.nextSse();
    const req = http.request({ host: '127.0.0.1', port: g.event.port, path: '/sse', agent: false });
    req.on('error', () => {});
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.on('error', () => {});
    res.resume();
    await appSide;
    defer(t, () => req.destroy());
    const code = await g.stop(5_000);
    assert.equal(code, 0, `exit ${code}; stdout ${JSON.stringify(g.lines)}\n${g.stderr()}`);
    assert.deepEqual(JSON.parse(g.lines.at(-1)!), { event: 'stopped' });
  });

  it(
    'SIGTERM with an open WebSocket: exits 0 within 5 s',
    async (t) => {
      const g = await serve(t, ['--target', app.url], { PORTHOLE_HOME: home(t) });
      const ws = new WebSocket(`ws://127.0.0.1:${g.event.port}/ws`);
      ws.on('error', () => {});
      defer(t, () => ws.terminate());
      await once(ws, 'message'); // the app's hello: the tunnel is up
      const code = await g.stop(5_000);
      assert.equal(code, 0, `exit ${code} (null: killed after 5 s); stdout ${JSON.stringify(g.lines)}`);
      assert.deepEqual(JSON.parse(g.lines.at(-1)!), { event: 'stopped' });
    },
  );
});

describe('IPv6', () => {
  it('--host ::1 serves http://[::1]:PORT through to the app', async (t) => {
    const probe = net.createServer();
    const v6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => resolve(true));
    });
    await closeServer(probe);
    if (!v6) {
      if (requireAll) assert.fail('::1 is not available and PORTHOLE_TEST_REQUIRE_ALL=1');
      t.skip('::1 is not available on this host');
      return;
    }
    const g = await serve(t, ['--host', '::1', '--target', app.url], { PORTHOLE_HOME: home(t) });
    assert.match(g.event.url, new RegExp(`^http://\\[::1\\]:${g.event.port}/?$`));
    const r = await get(g.event.port, '/v6?x=1', g.event.generatedToken, '::1');
    assert.equal(r.status, 200, r.text);
    const echoed = JSON.parse(r.text) as { method: string; url: string };
    assert.equal(echoed.method, 'GET');
    assert.equal(echoed.url, '/v6?x=1');
  });
});

describe('--insecure-no-auth', () => {
  it('warns on stderr and serves without credentials, even with --no-loopback-exempt', async (t) => {
    const g = await serve(t, ['--target', app.url, '--insecure-no-auth', '--no-loopback-exempt'], { PORTHOLE_HOME: home(t) });
    assert.match(g.stderr(), /WARNING/);
    const r = await get(g.event.port, '/open?y=2');
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { url: string }).url, '/open?y=2');
  });
});
