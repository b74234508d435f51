// src/gateway/ui.ts: which files the console serves (only what the build wrote, by exact
// name), and, through a real gateway on 127.0.0.1, that its static files are public while
// nothing else becomes so — not a method other than GET/HEAD, not a neighbouring path, not
// the API — and that a `?token=` on the console still signs in (and a wrong one counts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { isConsolePath, loadConsoleFiles } from '../../src/gateway/ui.js';

test('isConsolePath: /_porthole/ui and below, nothing beside it', () => {
  for (const p of ['/_porthole/ui', '/_porthole/ui/', '/_porthole/ui/assets/app-ABCDEFGH.js']) assert.equal(isConsolePath(p), true, p);
  for (const p of ['/_porthole/uix', '/_porthole/ui.js', '/_porthole/api/ui', '/ui/', '/_porthole/UI/']) assert.equal(isConsolePath(p), false, p);
});

test('loadConsoleFiles: index.html and known asset types under assets/, hashed ones immutable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-ui-'));
  try {
    mkdirSync(join(dir, 'assets', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'assets', 'app-ABCDEFGH.js'), 'x');
    writeFileSync(join(dir, 'assets', 'plain.css'), 'x');
    writeFileSync(join(dir, 'assets', 'secret.pem'), 'x');
    writeFileSync(join(dir, 'assets', 'sub', 'deep.js'), 'x');
    writeFileSync(join(dir, 'other.js'), 'x');
    const f = loadConsoleFiles([join(tmpdir(), 'porthole-ui-missing/'), `${dir}/`]);
    assert.equal(f.dir, `${dir}/`);
    assert.deepEqual([...f.assets.keys()].sort(), ['', 'assets/app-ABCDEFGH.js', 'assets/plain.css']);
    assert.equal(f.assets.get('assets/app-ABCDEFGH.js')?.immutable, true);
    assert.equal(f.assets.get('assets/plain.css')?.immutable, false);
    assert.equal(f.assets.get('')?.immutable, false);
    assert.equal(loadConsoleFiles([join(tmpdir(), 'porthole-ui-missing/')]).dir, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function send(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('console paths through the pipeline (loopback exemption off)', () => {
  const token = `ph_${'u'.repeat(43)}`;
  let home: string;
  let gateway: Gateway;
  let server: Server;
  let port: number;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'porthole-ui-gw-'));
    gateway = createGateway({ stateDir: home, token, app: (_req, res) => res.end('app'), settings: { loopbackExempt: false } });
    server = createServer(gateway.handleRequest);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.close();
    await gateway.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('GET and HEAD need no credential; other methods and neighbouring paths do', async () => {
    const index = await send(port, '/_porthole/ui/');
    // Built (dist/console) or not, the answer is the console's, not AUTH_REQUIRED.
    assert.ok(index.status === 200 || (index.status === 404 && index.body.includes('npm run build')), `${index.status} ${index.body}`);
    assert.equal((await send(port, '/_porthole/ui/', 'HEAD')).status, index.status);
    assert.equal((await send(port, '/_porthole/ui')).status, 308);
    assert.equal((await send(port, '/_porthole/ui/', 'POST')).status, 401);
    assert.equal((await send(port, '/_porthole/uix')).status, 401);
    assert.equal((await send(port, '/_porthole/api/session')).status, 401);
  });

  test('?token= on the console: the right one is a 303 with a session, a wrong one a counted 401', async () => {
    const ok = await send(port, `/_porthole/ui/?token=${token}`);
    assert.equal(ok.status, 303);
    assert.equal(ok.headers['location'], '/_porthole/ui/');
    const cookie = String((ok.headers['set-cookie'] as string[])[0]).split(';')[0]!;
    const who = await send(port, '/_porthole/api/session', 'GET', { cookie });
    assert.equal(who.status, 200);
    assert.deepEqual(JSON.parse(who.body).identity, { sub: 'owner', cred: 'session', scope: 'admin' });
    const bad = await send(port, `/_porthole/ui/?token=ph_${'w'.repeat(43)}`);
    assert.equal(bad.status, 401);
    assert.equal(JSON.parse(bad.body).error.code, 'AUTH_INVALID');
  });

  test('POST /_porthole/api/session trades a bearer for a session; another Origin is refused', async () => {
    const started = await send(port, '/_porthole/api/session', 'POST', { authorization: `Bearer ${token}` });
    assert.equal(started.status, 201);
    assert.match(String((started.headers['set-cookie'] as string[])[0]), /^porthole_session_[0-9a-f]+=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    assert.ok(!started.body.includes(token));
    const cross = await send(port, '/_porthole/api/session', 'POST', { authorization: `Bearer ${token}`, origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
    assert.equal(JSON.parse(cross.body).error.code, 'ORIGIN_NOT_ALLOWED');
    assert.equal(cross.headers['set-cookie'], undefined);
  });
});
