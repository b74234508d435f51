// secrets/paths: home resolution per OS, the file layout and the short socket fallback.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAX_SOCKET_PATH_BYTES, ensureSocketDir, resolveHome, statePaths } from '../../src/secrets/paths.js';

describe('resolveHome', () => {
  const linux = { platform: 'linux' as const, homedir: '/home/ada', env: {} };

  test('explicit home wins over PORTHOLE_HOME and the default', () => {
    assert.equal(resolveHome({ ...linux, home: '/srv/ph', env: { PORTHOLE_HOME: '/env/ph' } }), '/srv/ph');
  });

  test('PORTHOLE_HOME wins over the default; empty counts as unset', () => {
    assert.equal(resolveHome({ ...linux, env: { PORTHOLE_HOME: '/env/ph', XDG_CONFIG_HOME: '/x' } }), '/env/ph');
    assert.equal(resolveHome({ ...linux, env: { PORTHOLE_HOME: '' } }), '/home/ada/.config/porthole');
  });

  test('relative homes become absolute', () => {
    assert.equal(resolveHome({ ...linux, home: 'rel/dir' }), join(process.cwd(), 'rel/dir'));
  });

  test('Linux: XDG_CONFIG_HOME, else ~/.config; relative XDG is ignored', () => {
    assert.equal(resolveHome({ ...linux, env: { XDG_CONFIG_HOME: '/xdg' } }), '/xdg/porthole');
    assert.equal(resolveHome(linux), '/home/ada/.config/porthole');
    assert.equal(resolveHome({ ...linux, env: { XDG_CONFIG_HOME: 'relative' } }), '/home/ada/.config/porthole');
    assert.equal(resolveHome({ ...linux, platform: 'freebsd' }), '/home/ada/.config/porthole');
  });

  test('macOS: ~/Library/Application Support, ignoring XDG', () => {
    assert.equal(
      resolveHome({ platform: 'darwin', homedir: '/Users/ada', env: { XDG_CONFIG_HOME: '/xdg' } }),
      '/Users/ada/Library/Application Support/porthole',
    );
  });

  test('Windows: %APPDATA%, else <home>\\AppData\\Roaming', () => {
    assert.equal(
      resolveHome({ platform: 'win32', homedir: 'C:\\Users\\ada', env: { APPDATA: 'C:\\Users\\ada\\AppData\\Roaming' } }),
      'C:\\Users\\ada\\AppData\\Roaming\\porthole',
    );
    assert.equal(
      resolveHome({ platform: 'win32', homedir: 'C:\\Users\\ada', env: {} }),
      'C:\\Users\\ada\\AppData\\Roaming\\porthole',
    );
  });

  test('an embedding app gets <base>/<app>/porthole', () => {
    assert.equal(resolveHome({ ...linux, appName: 'mydesk' }), '/home/ada/.config/mydesk/porthole');
    assert.equal(
      resolveHome({ platform: 'darwin', homedir: '/Users/ada', env: {}, appName: 'My.Desk_2' }),
      '/Users/ada/Library/Application Support/My.Desk_2/porthole',
    );
    // PORTHOLE_HOME still wins: the operator's choice beats the app's default.
    assert.equal(resolveHome({ ...linux, appName: 'mydesk', env: { PORTHOLE_HOME: '/p' } }), '/p');
  });

  test('invalid app names and an empty explicit home are INVALID_ARGUMENT', () => {
    for (const appName of ['', '../evil', 'a/b', '.hidden', '-x', 'a b', 'x'.repeat(65)]) {
      assert.throws(() => resolveHome({ ...linux, appName }), { code: 'INVALID_ARGUMENT' }, appName);
    }
    assert.doesNotThrow(() => resolveHome({ ...linux, appName: 'x'.repeat(64) }));
    assert.throws(() => resolveHome({ ...linux, home: '' }), { code: 'INVALID_ARGUMENT' });
  });

  test('no home directory → INVALID_ARGUMENT pointing to PORTHOLE_HOME', () => {
    assert.throws(() => resolveHome({ platform: 'linux', homedir: '', env: {} }), /PORTHOLE_HOME/);
  });
});

describe('statePaths', () => {
  test('lays out the files of DESIGN §5', () => {
    const p = statePaths('/h', { platform: 'linux' });
    assert.deepEqual(p, {
      home: '/h',
      configFile: '/h/porthole.toml',
      secretsDir: '/h/secrets',
      tokenFile: '/h/secrets/token',
      identityDir: '/h/identity',
    acmeDir: '/h/acme',
      devicesFile: '/h/devices.json',
      auditLog: '/h/audit.log',
      runDir: '/h/run',
      socketPath: '/h/run/gateway.sock',
      stateFile: '/h/state.json',
      sessionsFile: '/h/sessions.json',
    });
  });

  test('a deep home gets a short socket in <tmpdir>/porthole-<uid>/', () => {
    const home = '/home/ada/' + 'deep/'.repeat(20) + 'porthole';
    assert.ok(Buffer.byteLength(home + '/run/gateway.sock') > MAX_SOCKET_PATH_BYTES);
    const hash = createHash('sha256').update(home).digest('hex').slice(0, 16);
    const p = statePaths(home, { platform: 'linux', tmpdir: '/tmp', uid: 1000 });
    assert.equal(p.socketPath, `/tmp/porthole-1000/${hash}.sock`);
    assert.equal(p.runDir, home + '/run');
    // Exactly at the limit keeps the preferred path.
    const edge = '/' + 'a'.repeat(MAX_SOCKET_PATH_BYTES - '/run/gateway.sock'.length - 1);
    assert.equal(statePaths(edge, { platform: 'linux' }).socketPath, edge + '/run/gateway.sock');
  });

  test('counts bytes, not characters', () => {
    const home = '/' + 'é'.repeat(45); // 46 chars, 91 bytes
    assert.notEqual(statePaths(home, { platform: 'linux', tmpdir: '/tmp' }).socketPath, home + '/run/gateway.sock');
  });

  test('a deep TMPDIR falls back to /tmp', () => {
    const deep = '/' + 'x'.repeat(120);
    const p = statePaths('/' + 'h'.repeat(100), { platform: 'darwin', tmpdir: deep, uid: 501 });
    assert.match(p.socketPath, /^\/tmp\/porthole-501\/[0-9a-f]{16}\.sock$/);
  });

  test('Windows uses a named pipe, case-insensitively per home', () => {
    const a = statePaths('C:\\Users\\Ada\\AppData\\Roaming\\porthole', { platform: 'win32' });
    const b = statePaths('c:\\users\\ada\\appdata\\roaming\\porthole', { platform: 'win32' });
    assert.match(a.socketPath, /^\\\\\.\\pipe\\porthole-[0-9a-f]{16}$/);
    assert.equal(a.socketPath, b.socketPath);
    assert.equal(a.tokenFile, 'C:\\Users\\Ada\\AppData\\Roaming\\porthole\\secrets\\token');
  });
});

describe('ensureSocketDir', { skip: process.platform === 'win32' ? 'POSIX sockets' : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-paths-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('creates run/ 0700 for a short home', () => {
    const p = statePaths(join(dir, 'short'));
    ensureSocketDir(p);
    assert.equal(statSync(p.runDir).mode & 0o777, 0o700);
  });

  test('creates the private fallback directory for a deep home', () => {
    const p = statePaths(join(dir, 'd'.repeat(120)), { tmpdir: join(dir, 't') });
    assert.ok(p.socketPath.startsWith(join(dir, 't', 'porthole-')));
    ensureSocketDir(p);
    const st = statSync(join(p.socketPath, '..'));
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, process.getuid?.());
  });
});
