// The OS keyring backend against a real Secret Service (private D-Bus session bus +
// gnome-keyring-daemon): the library store, then the real CLI — token in the keyring and
// not in secrets/token, read back by `token show` and `serve`, rotation, survival of a
// keyring restart, the in-memory session collection refused, the sticky choice failing
// clearly without the bus or with the keyring locked, PORTHOLE_SECRET_STORE, migration.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { statePaths } from '../../src/secrets/paths.js';
import { readState } from '../../src/secrets/state.js';
import { hasPersistentKeyring, openSecretStore, resolveToken } from '../../src/secrets/store.js';
import { runCli, type Served, startCli } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { send } from '../helpers/http.js';
import { LOGIN_COLLECTION, SESSION_COLLECTION, type SecretServicePeer, skipUnlessSecretService, startSecretService } from './keyring-daemon.js';

const TOKEN_RE = /^ph_[A-Za-z0-9_-]{43}$/;
const skip = process.platform === 'win32' || process.platform === 'darwin' ? 'Secret Service is Linux/BSD only' : skipUnlessSecretService();

describe('Secret Service keyring backend', { skip }, () => {
  let peer: SecretServicePeer;
  let app: EchoApp;
  let root: string;
  let n = 0;
  const running: Served[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'porthole-kr-'));
    peer = await startSecretService();
    app = await startEchoApp();
  });
  after(async () => {
    for (const s of running) await s.stop();
    await app?.close();
    await peer?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const home = () => join(root, `home-${++n}`);
  /**
   * The child's environment: the private bus, never the developer's, and the default store
   * choice (auto) — the test helpers otherwise pin children to files.
   */
  const cliEnv = (h: string, extra: Record<string, string> = {}) => ({ ...peer.env, PORTHOLE_SECRET_STORE: 'auto', PORTHOLE_HOME: h, ...extra });
  const libEnv = () => ({ ...peer.env });
  const noBus = (h: string) => ({
    PORTHOLE_HOME: h,
    PORTHOLE_SECRET_STORE: 'auto',
    PATH: peer.env.PATH!,
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(root, 'no-such-bus')}`,
    XDG_RUNTIME_DIR: join(root, 'no-runtime'),
  });

  async function tokenShow(h: string): Promise<string> {
    const r = await runCli(['token', 'show'], cliEnv(h));
    assert.equal(r.code, 0, r.stderr);
    const t = r.stdout.trim();
    assert.match(t, TOKEN_RE);
    return t;
  }

  test('library: a persistent, unlocked collection is used; values round-trip; homes are separate', () => {
    assert.equal(hasPersistentKeyring({ env: libEnv() }), true);
    const a = statePaths(home());
    const b = statePaths(home());
    const sa = openSecretStore(a, { env: libEnv() });
    const sb = openSecretStore(b, { env: libEnv() });
    assert.equal(sa.kind, 'keyring');
    assert.equal(sa.get('token'), undefined);
    for (const value of ['v1', 'line\n', 'ünï ☃ $x `y` \'q\' "d"', 'x'.repeat(4096)]) {
      sa.set('tunnel-registration-secret', value);
      assert.equal(sa.get('tunnel-registration-secret'), value);
    }
    sa.set('token', 'home-a');
    sb.set('token', 'home-b');
    assert.equal(sa.get('token'), 'home-a');
    assert.equal(sb.get('token'), 'home-b');
    sa.delete('token');
    sa.delete('token');
    assert.equal(sa.get('token'), undefined);
    assert.equal(sb.get('token'), 'home-b');
    // The choice is recorded at the first write; nothing went to files.
    assert.equal(readState(a).secretStore?.kind, 'keyring');
    assert.equal(existsSync(a.secretsDir), false);
    assert.throws(() => sa.get('../x'), { code: 'INVALID_ARGUMENT' });
  });

  test('CLI: init puts the token in the keyring (not secrets/token); token show and serve read it; rotation updates it', async () => {
    const h = home();
    const paths = statePaths(h);
    const init = await runCli(['init'], cliEnv(h));
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stderr, /keyring Secret Service/);
    assert.equal(existsSync(paths.tokenFile), false, 'no token file');
    const token = await tokenShow(h);
    assert.equal(await peer.lookup(h, 'token'), token);
    assert.ok(!readFileSync(paths.stateFile, 'utf8').includes(token));
    assert.deepEqual(
      { store: readState(paths).secretStore?.kind, token: readState(paths).token?.store },
      { store: 'keyring', token: 'keyring' },
    );

    const s = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--no-loopback-exempt'], cliEnv(h));
    running.push(s);
    assert.match(String(s.event['tokenSource']), /keyring/);
    assert.equal(s.event.generatedToken, undefined);
    const ok = await send(s.event.port, '/x', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.text);

    // A running gateway keeps the store it opened: migrating under it is refused.
    const busy = await runCli(['secrets', 'migrate', '--to', 'file'], cliEnv(h));
    assert.equal(busy.code, 1, busy.stderr);
    assert.match(busy.stderr, /\[GATEWAY_ALREADY_RUNNING\]/);

    const rot = await runCli(['token', 'rotate'], cliEnv(h));
    assert.equal(rot.code, 0, rot.stderr);
    const rotated = await tokenShow(h);
    assert.notEqual(rotated, token);
    assert.equal(await peer.lookup(h, 'token'), rotated);
    assert.equal((await send(s.event.port, '/x', { headers: { authorization: `Bearer ${rotated}` } })).status, 200);
    assert.equal((await send(s.event.port, '/x', { headers: { authorization: `Bearer ${token}` } })).code, 'AUTH_REVOKED');
    await s.stop();
    running.splice(running.indexOf(s), 1);

    // Offline rotation (no gateway) writes the keyring too.
    const rot2 = await runCli(['token', 'rotate'], cliEnv(h));
    assert.equal(rot2.code, 0, rot2.stderr);
    const third = await tokenShow(h);
    assert.notEqual(third, rotated);
    assert.equal(await peer.lookup(h, 'token'), third);
    assert.equal(existsSync(paths.tokenFile), false);
  });

  test('the token survives a restart of the keyring daemon (it is on disk)', async () => {
    const h = home();
    assert.equal((await runCli(['init'], cliEnv(h))).code, 0);
    const token = await tokenShow(h);
    await peer.restartKeyring();
    assert.equal(await tokenShow(h), token);
  });

  test('the in-memory session collection is never used: a new home gets files', async () => {
    await peer.setDefaultAlias(SESSION_COLLECTION);
    try {
      assert.equal(hasPersistentKeyring({ env: libEnv() }), false);
      const h = home();
      const paths = statePaths(h);
      const init = await runCli(['init'], cliEnv(h));
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stderr, /file /);
      const token = await tokenShow(h);
      assert.equal(readFileSync(paths.tokenFile, 'utf8').trim(), token);
      assert.equal(await peer.lookup(h, 'token'), undefined);
      assert.equal(readState(paths).secretStore?.kind, 'file');
      // Asking for the keyring explicitly says why it cannot be used.
      const forced = await runCli(['init'], cliEnv(home(), { PORTHOLE_SECRET_STORE: 'keyring' }));
      assert.equal(forced.code, 1, forced.stderr);
      assert.match(forced.stderr, /in-memory session collection.*\[KEYRING_UNAVAILABLE\]/s);
    } finally {
      await peer.setDefaultAlias(LOGIN_COLLECTION);
    }
  });

  test('sticky: a keyring home without its bus fails with KEYRING_UNAVAILABLE, never files or a new token', async () => {
    const h = home();
    const paths = statePaths(h);
    assert.equal((await runCli(['init'], cliEnv(h))).code, 0);
    const token = await tokenShow(h);
    const stateBefore = readFileSync(paths.stateFile, 'utf8');

    for (const argv of [['token', 'show'], ['init'], ['token', 'rotate']]) {
      const r = await runCli(argv, noBus(h));
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\[KEYRING_UNAVAILABLE\]/);
      assert.match(r.stderr, /D-Bus session bus/);
      assert.match(r.stderr, /does not fall back to files/);
      assert.equal(r.stdout, '');
    }
    // Over SSH there is often no bus variable at all.
    const unset = await runCli(['token', 'show'], { ...noBus(h), DBUS_SESSION_BUS_ADDRESS: '' });
    assert.match(unset.stderr, /no D-Bus session bus.*\[KEYRING_UNAVAILABLE\]/s);
    const serve = await runCli(['serve', '--target', app.url, '--port', '0', '--json'], noBus(h));
    assert.equal(serve.code, 1, serve.stderr);
    assert.match(serve.stderr, /\[KEYRING_UNAVAILABLE\]/);

    assert.equal(existsSync(paths.tokenFile), false, 'no fallback token file');
    assert.equal(readFileSync(paths.stateFile, 'utf8'), stateBefore);
    // The library says the same, by code.
    const store = openSecretStore(paths, { env: noBus(h) });
    assert.throws(() => resolveToken({ paths, store, env: {}, create: true }), (err: unknown) => {
      assert.ok(isPortholeError(err, 'KEYRING_UNAVAILABLE'));
      assert.ok(!err.message.includes(token));
      return true;
    });
    // Forcing files on a keyring home is a configuration error, not a silent switch.
    const forced = await runCli(['token', 'show'], cliEnv(h, { PORTHOLE_SECRET_STORE: 'file' }));
    assert.equal(forced.code, 2, forced.stderr);
    assert.match(forced.stderr, /secrets migrate --to file.*\[CONFIG_INVALID\]/s);
    // With the bus back, the same token.
    assert.equal(await tokenShow(h), token);
  });

  test('sticky: a locked keyring is KEYRING_UNAVAILABLE, not a missing token', async () => {
    const h = home();
    assert.equal((await runCli(['init'], cliEnv(h))).code, 0);
    const token = await tokenShow(h);
    await peer.lock();
    try {
      const r = await runCli(['token', 'show'], cliEnv(h));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /is locked.*\[KEYRING_UNAVAILABLE\]/s);
      const fresh = await runCli(['init'], cliEnv(home()));
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.match(fresh.stderr, /file /, 'a new home does not wait for a locked keyring');
    } finally {
      await peer.restartKeyring(); // --unlock again with the password
    }
    assert.equal(await tokenShow(h), token);
  });

  test('PORTHOLE_SECRET_STORE=file forces files; an existing file home stays on files', async () => {
    const h = home();
    const paths = statePaths(h);
    const r = await runCli(['init'], cliEnv(h, { PORTHOLE_SECRET_STORE: 'file' }));
    assert.equal(r.code, 0, r.stderr);
    const token = readFileSync(paths.tokenFile, 'utf8').trim();
    assert.match(token, TOKEN_RE);
    assert.equal(await peer.lookup(h, 'token'), undefined);
    // Later runs without the variable keep using files (recorded, no silent migration).
    assert.equal(await tokenShow(h), token);
    const status = await runCli(['secrets', 'status', '--json'], cliEnv(h));
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout), {
      store: 'file',
      where: `file ${paths.secretsDir}`,
      recorded: 'file',
      mode: 'auto',
      persistentKeyring: true,
    });
    const bad = await runCli(['token', 'show'], cliEnv(h, { PORTHOLE_SECRET_STORE: 'vault' }));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /PORTHOLE_SECRET_STORE.*\[CONFIG_INVALID\]/);
  });

  test('secrets migrate moves every secret both ways and records the store', async () => {
    const h = home();
    const paths = statePaths(h);
    assert.equal((await runCli(['init'], cliEnv(h, { PORTHOLE_SECRET_STORE: 'file' }))).code, 0);
    const token = await tokenShow(h);
    openSecretStore(paths, { env: libEnv() }).set('tunnel-registration-secret', 'registration-secret-123');

    const toKeyring = await runCli(['secrets', 'migrate', '--to', 'keyring'], cliEnv(h));
    assert.equal(toKeyring.code, 0, toKeyring.stderr);
    assert.match(toKeyring.stderr, /Moved 2 secret\(s\) \(token, tunnel-registration-secret\) from the file store to the keyring store/);
    assert.equal(existsSync(paths.tokenFile), false);
    assert.equal(await peer.lookup(h, 'token'), token);
    assert.equal(await peer.lookup(h, 'tunnel-registration-secret'), 'registration-secret-123');
    assert.deepEqual([readState(paths).secretStore?.kind, readState(paths).secretStore?.backend, readState(paths).token?.store], ['keyring', 'secret-service', 'keyring']);
    assert.equal(await tokenShow(h), token);

    const toFile = await runCli(['secrets', 'migrate', '--to', 'file'], cliEnv(h));
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.equal(readFileSync(paths.tokenFile, 'utf8').trim(), token);
    assert.equal(await peer.lookup(h, 'token'), undefined);
    assert.equal(await peer.lookup(h, 'tunnel-registration-secret'), undefined);
    assert.equal(readState(paths).secretStore?.kind, 'file');
    assert.equal(await tokenShow(h), token);
  });
});
