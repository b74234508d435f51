// auth.mode = "password" through the real CLI: `porthole password set` (stdin only, never
// argv; minimum length; refuses an empty stdin), `serve --auth-mode password` refusing to
// start without a password, the public login form, CSRF (Origin) on its POST, same-site
// redirects only, failures counted toward the ban, and sessions ending when the password
// changes on a running gateway.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyIdentity } from '../../src/gateway/identity.js';
import { cleanEnv, runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { echoed, type Reply, send, sessionCookie } from '../helpers/http.js';

const BIN = new URL('../../bin/porthole.js', import.meta.url).pathname;
const PASSWORD = 'correct horse battery staple';

/** `porthole password set` with `input` on stdin (a pipe, not a TTY). */
async function passwordSet(home: string, input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'password', 'set'], {
    env: cleanEnv({ PORTHOLE_HOME: home }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  child.stdin.end(input);
  try {
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.code, code, r.text);
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = 'application/x-www-form-urlencoded';

describe('password mode', () => {
  let app: EchoApp;
  let served: Served | undefined;
  const home = tempHome();
  let port = 0;
  let origin = '';

  before(async () => {
    app = await startEchoApp();
  });

  after(async () => {
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  test('password set refuses an empty stdin, a short or multi-line password; never echoes it', async () => {
    for (const [input, why] of [
      ['', /stdin is empty/],
      ['\n', /password is empty/],
      ['hunter2\n', /fewer than 12 characters/],
      ['first line long\nsecond line long\n', /several lines/],
    ] as const) {
      const r = await passwordSet(home.home, input);
      assert.equal(r.code, 2, `${JSON.stringify(input)}: ${r.stderr}`);
      assert.match(r.stderr, /\[PASSWORD_WEAK\]/);
      assert.match(r.stderr, why);
      assert.ok(!r.stderr.includes('hunter2') && !r.stderr.includes('second line'), 'the password is never echoed');
    }
  });

  test('serve --auth-mode password refuses to start without a password, saying how to set one', async () => {
    const r = await runCli(['serve', '--target', app.url, '--port', '0', '--auth-mode', 'password', '--json'], { PORTHOLE_HOME: home.home });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[PASSWORD_NOT_SET\]/);
    assert.match(r.stderr, /porthole password set/);
  });

  test('a password in porthole.toml is refused (secrets never go in the file)', async () => {
    const other = tempHome();
    try {
      writeFileSync(join(other.home, 'porthole.toml'), `version = 1\n[auth]\nmode = "password"\npassword = "${PASSWORD}"\n`, { mode: 0o600 });
      const r = await runCli(['config', 'check'], { PORTHOLE_HOME: other.home });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /\[CONFIG_SECRET_IN_FILE\]/);
      assert.ok(!r.stderr.includes(PASSWORD));
    } finally {
      other.cleanup();
    }
  });

  test('password set stores a scrypt hash (0600), not the password; then serve starts', async () => {
    const r = await passwordSet(home.home, `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(!r.stderr.includes(PASSWORD));
    const stored = readFileSync(join(home.home, 'secrets', 'password-hash'), 'utf8');
    assert.match(stored, /^\$scrypt\$ln=15,r=8,p=1\$/);
    assert.ok(!stored.includes(PASSWORD));

    served = await startCli(['serve', '--target', app.url, '--port', '0', '--auth-mode', 'password', '--no-loopback-exempt', '--json'], {
      PORTHOLE_HOME: home.home,
    });
    port = served.event.port;
    origin = `http://127.0.0.1:${port}`;
    assert.equal(served.event['auth'], 'password');
  });

  test('a browser opening a page is sent to the login form; an API client gets 401', async () => {
    const page = await send(port, '/app/page?x=1', { headers: { accept: 'text/html,application/xhtml+xml' } });
    assert.equal(page.status, 303, page.text);
    assert.equal(page.headers['location'], `/_porthole/login?next=${encodeURIComponent('/app/page?x=1')}`);
    const api = await send(port, '/app/data');
    assertError(api, 401, 'AUTH_REQUIRED');

    const formPage = await send(port, '/_porthole/login?next=%2Fapp%2Fpage');
    assert.equal(formPage.status, 200);
    assert.match(String(formPage.headers['content-type']), /^text\/html/);
    assert.match(String(formPage.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.match(formPage.text, /<input type="hidden" name="next" value="\/app\/page">/);
  });

  test('the login POST is CSRF-safe: a foreign Origin or a cross-site fetch is refused', async () => {
    const body = form({ password: PASSWORD, next: '/' });
    for (const headers of [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
    ]) {
      const r = await send(port, '/_porthole/login', { method: 'POST', headers: { 'content-type': FORM, ...headers }, body });
      assertError(r, 403, 'ORIGIN_NOT_ALLOWED');
      assert.equal(r.headers['set-cookie'], undefined);
    }
  });

  test('a wrong password: 401, never reflected; the form answers in HTML, JSON clients in JSON', async () => {
    const wrong = 'not the password at all';
    const html = await send(port, '/_porthole/login', {
      method: 'POST',
      headers: { 'content-type': FORM, origin },
      body: form({ password: wrong, next: '/x' }),
      localAddress: '127.0.0.5',
    });
    assert.equal(html.status, 401);
    assert.match(html.text, /wrong password \[AUTH_INVALID\]/);
    assert.ok(!html.text.includes(wrong), 'the password is not reflected');
    const json = await send(port, '/_porthole/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: wrong }),
      localAddress: '127.0.0.5',
    });
    assertError(json, 401, 'AUTH_INVALID');
    assert.ok(!json.text.includes(wrong));
  });

  test('five wrong passwords ban the client, like wrong tokens; others are unaffected', async () => {
    const from = '127.0.0.6';
    let last: Reply | undefined;
    for (let i = 0; i < 5; i++) {
      last = await send(port, '/_porthole/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ password: `guess number ${i} here` }),
        localAddress: from,
      });
    }
    assertError(last!, 429, 'RATE_LIMITED');
    assert.ok(Number(last!.headers['retry-after']) > 0);
    const right = await send(port, '/_porthole/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: PASSWORD }),
      localAddress: from,
    });
    assertError(right, 429, 'RATE_LIMITED');
  });

  let cookie = '';

  test('the right password: a session cookie and a 303 to the same-site path only', async () => {
    const r = await send(port, '/_porthole/login', {
      method: 'POST',
      headers: { 'content-type': FORM, origin },
      body: form({ password: PASSWORD, next: '/app/page?x=1' }),
    });
    assert.equal(r.status, 303, r.text);
    assert.equal(r.headers['location'], '/app/page?x=1');
    const c = sessionCookie(r);
    assert.ok(c.attributes.includes('HttpOnly'));
    assert.ok(c.attributes.includes('SameSite=Lax'));
    cookie = c.pair;

    const seen = echoed(await send(port, '/app/page?x=1', { headers: { cookie } }));
    assert.equal(seen.headers.cookie, undefined, "porthole's cookie is not forwarded");
    const key = Buffer.from(readFileSync(join(home.home, 'secrets', 'identity-key'), 'utf8').trim(), 'base64url');
    const id = verifyIdentity(String(seen.headers['x-porthole-identity']), key);
    assert.equal(id?.sub, 'owner');
    assert.equal(id?.cred, 'session');

    for (const next of ['//evil.example/', '/\\evil.example', 'https://evil.example/']) {
      const off = await send(port, '/_porthole/login', {
        method: 'POST',
        headers: { 'content-type': FORM },
        body: form({ password: PASSWORD, next }),
      });
      assert.equal(off.status, 303, off.text);
      assert.equal(off.headers['location'], '/', `next=${next} is not followed`);
    }
  });

  test('the master token still works for API clients in password mode', async () => {
    const token = (await runCli(['token', 'show'], { PORTHOLE_HOME: home.home })).stdout.trim();
    const r = await send(port, '/_porthole/api/status', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.json as { auth: { mode: string } }).auth.mode, 'password');
  });

  test('a new password ends the sessions of the old one at once', async () => {
    assert.equal((await send(port, '/still', { headers: { cookie } })).status, 200);
    const r = await passwordSet(home.home, 'a different long passphrase\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /session\(s\) signed in with the old password ended/);
    const after = await send(port, '/still', { headers: { cookie } });
    assertError(after, 401, 'AUTH_REQUIRED');
    const old = await send(port, '/_porthole/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: PASSWORD }),
      localAddress: '127.0.0.7',
    });
    assertError(old, 401, 'AUTH_INVALID');
    const fresh = await send(port, '/_porthole/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'a different long passphrase' }),
      localAddress: '127.0.0.7',
    });
    assert.equal(fresh.status, 303, fresh.text);
  });
});
