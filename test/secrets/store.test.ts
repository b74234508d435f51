// secrets/store + state: the file store, state.json, and the token lifecycle.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { type StatePaths, statePaths } from '../../src/secrets/paths.js';
import { findTool } from '../../src/secrets/tool.js';
import { readState, updateState } from '../../src/secrets/state.js';
import {
  createFileSecretStore,
  hasPersistentKeyring,
  openSecretStore,
  resolveToken,
  rotateStoredToken,
  secretStoreMode,
} from '../../src/secrets/store.js';
import { generateToken } from '../../src/secrets/token.js';

const posixOnly = process.platform === 'win32' ? 'POSIX modes only' : false;
/** An environment without a session bus: no keyring, whatever the machine running the tests has. */
const NO_BUS = { PATH: process.env['PATH'], DBUS_SESSION_BUS_ADDRESS: '', XDG_RUNTIME_DIR: '' };
let root: string;
let n = 0;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'porthole-store-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A fresh, empty porthole home per test. */
function freshHome(): StatePaths {
  return statePaths(join(root, `home-${++n}`));
}

function tokenFile(value: string, mode = 0o600): string {
  const file = join(root, `tokenfile-${++n}`);
  writeFileSync(file, value + '\n', { mode });
  chmodSync(file, mode);
  return file;
}

describe('file secret store', () => {
  test('set/get/delete round-trip with 0600 files in a 0700 dir', () => {
    const paths = freshHome();
    const store = createFileSecretStore(paths.secretsDir);
    assert.equal(store.kind, 'file');
    assert.equal(store.describe(), `file ${paths.secretsDir}`);
    assert.equal(store.get('token'), undefined);
    store.set('token', 'v1');
    store.set('tunnel-secret', 'line\n');
    assert.equal(store.get('token'), 'v1');
    assert.equal(store.get('tunnel-secret'), 'line\n');
    if (!posixOnly) {
      assert.equal(statSync(paths.tokenFile).mode & 0o777, 0o600);
      assert.equal(statSync(paths.secretsDir).mode & 0o777, 0o700);
    }
    store.delete('token');
    store.delete('token');
    assert.equal(store.get('token'), undefined);
  });

  test('rejects names that are not [a-z0-9-]+', () => {
    const store = createFileSecretStore(freshHome().secretsDir);
    for (const name of ['', '../x', 'a/b', 'Token', 'a.b', 'a_b']) {
      assert.throws(() => store.get(name), { code: 'INVALID_ARGUMENT' }, name);
      assert.throws(() => store.set(name, 'v'), { code: 'INVALID_ARGUMENT' }, name);
    }
  });

  test('refuses a stored secret others can read', { skip: posixOnly }, () => {
    const paths = freshHome();
    const store = createFileSecretStore(paths.secretsDir);
    store.set('token', 'v');
    chmodSync(paths.tokenFile, 0o644);
    assert.throws(() => store.get('token'), { code: 'SECRET_FILE_INSECURE' });
  });

  test('openSecretStore uses the file store while no persistent keyring is detected', () => {
    const paths = freshHome();
    assert.equal(hasPersistentKeyring({ env: NO_BUS }), false);
    const store = openSecretStore(paths, { env: NO_BUS });
    assert.equal(store.kind, 'file');
    assert.equal(store.describe(), `file ${paths.secretsDir}`);
  });
});

describe('choosing the store (no keyring reachable)', () => {
  test('the choice is recorded at the first write, never by opening or reading', () => {
    const paths = freshHome();
    const store = openSecretStore(paths, { env: NO_BUS });
    assert.equal(store.get('token'), undefined);
    assert.throws(() => statSync(paths.home), { code: 'ENOENT' });
    store.set('tunnel-secret', 'x');
    assert.equal(readState(paths).secretStore?.kind, 'file');
    assert.ok(!Number.isNaN(Date.parse(readState(paths).secretStore?.since ?? '')));
  });

  test('PORTHOLE_SECRET_STORE: bad value → CONFIG_INVALID; keyring without one → KEYRING_UNAVAILABLE', () => {
    const paths = freshHome();
    assert.equal(secretStoreMode({}), 'auto');
    assert.equal(secretStoreMode({ PORTHOLE_SECRET_STORE: '' }), 'auto');
    assert.throws(() => openSecretStore(paths, { env: { ...NO_BUS, PORTHOLE_SECRET_STORE: 'vault' } }), {
      code: 'CONFIG_INVALID',
      message: /PORTHOLE_SECRET_STORE/,
    });
    assert.throws(() => openSecretStore(paths, { env: { ...NO_BUS, PORTHOLE_SECRET_STORE: 'keyring' } }), {
      code: 'KEYRING_UNAVAILABLE',
      message: /no D-Bus session bus/,
    });
    assert.throws(() => statSync(paths.home), { code: 'ENOENT' });
  });

  test('a home with files (from before the record existed) stays on files', () => {
    const paths = freshHome();
    createFileSecretStore(paths.secretsDir).set('password-hash', 'h');
    assert.equal(readState(paths).secretStore, undefined);
    assert.equal(openSecretStore(paths, { env: NO_BUS }).kind, 'file');
    assert.throws(() => openSecretStore(paths, { env: { ...NO_BUS, PORTHOLE_SECRET_STORE: 'keyring' } }), {
      code: 'CONFIG_INVALID',
      message: /secrets migrate --to keyring/,
    });
  });

  test('a home recorded as keyring fails with KEYRING_UNAVAILABLE, and writes no file', () => {
    const paths = freshHome();
    updateState(paths, (s) => {
      s.secretStore = { kind: 'keyring', backend: 'secret-service', since: new Date().toISOString() };
      s.token = { issuedAt: new Date().toISOString(), store: 'keyring' };
    });
    const store = openSecretStore(paths, { env: NO_BUS });
    assert.equal(store.kind, 'keyring');
    for (const attempt of [
      () => store.get('token'),
      () => store.set('token', generateToken()),
      () => resolveToken({ paths, store, env: {}, create: true }),
    ]) {
      assert.throws(attempt, (err: unknown) => {
        assert.ok(isPortholeError(err, 'KEYRING_UNAVAILABLE'));
        assert.ok(err.message.includes(paths.stateFile));
        assert.ok(err.message.includes('PORTHOLE_AUTH_TOKEN'));
        return true;
      });
    }
    assert.throws(() => statSync(paths.secretsDir), { code: 'ENOENT' });
    assert.throws(() => openSecretStore(paths, { env: { ...NO_BUS, PORTHOLE_SECRET_STORE: 'file' } }), {
      code: 'CONFIG_INVALID',
    });
  });

  test('a malformed secretStore record is CONFIG_INVALID', () => {
    const paths = freshHome();
    mkdirSync(paths.home, { recursive: true });
    for (const v of ['"keyring"', '{"kind":"vault","since":"x"}', '{"kind":"file"}']) {
      writeFileSync(paths.stateFile, `{"version":1,"secretStore":${v}}`);
      assert.throws(() => openSecretStore(paths, { env: NO_BUS }), { code: 'CONFIG_INVALID', message: /secretStore/ }, v);
    }
  });
});

describe('state.json', () => {
  test('missing → { version: 1 }; updates persist atomically as 0600', () => {
    const paths = freshHome();
    assert.deepEqual(readState(paths), { version: 1 });
    const s = updateState(paths, (st) => {
      st.settings = { a: 1 };
    });
    assert.deepEqual(s, { version: 1, settings: { a: 1 } });
    assert.deepEqual(readState(paths), s);
    updateState(paths, (st) => {
      st['consent'] = true;
    });
    assert.deepEqual(readState(paths), { version: 1, settings: { a: 1 }, consent: true });
    if (!posixOnly) assert.equal(statSync(paths.stateFile).mode & 0o777, 0o600);
  });

  test('corrupt or foreign content → CONFIG_INVALID naming state.json', () => {
    const paths = freshHome();
    mkdirSync(paths.home, { recursive: true });
    for (const text of ['{not json', '[]', 'null', '{"version":2}', '{}', '{"version":1,"token":"x"}']) {
      writeFileSync(paths.stateFile, text);
      assert.throws(() => readState(paths), (err: unknown) => {
        assert.ok(isPortholeError(err, 'CONFIG_INVALID'), text);
        assert.ok(err.message.includes('state.json'));
        return true;
      });
    }
  });
});

describe('resolveToken precedence', () => {
  const flagToken = generateToken();
  const flagFileToken = generateToken();
  const envToken = generateToken();
  const configToken = generateToken();
  const storeToken = generateToken();

  function setup() {
    const paths = freshHome();
    const store = createFileSecretStore(paths.secretsDir);
    store.set('token', storeToken);
    return {
      paths,
      store,
      flagFile: tokenFile(flagFileToken),
      configFile: tokenFile(configToken),
    };
  }

  test('--auth-token beats everything', () => {
    const s = setup();
    const r = resolveToken({
      paths: s.paths,
      store: s.store,
      flags: { authToken: flagToken, authTokenFile: s.flagFile },
      env: { PORTHOLE_AUTH_TOKEN: envToken },
      configTokenFile: s.configFile,
      create: true,
    });
    assert.deepEqual(r, { token: flagToken, source: 'flag', generated: false, describe: '--auth-token' });
  });

  test('--auth-token-file beats env, config and store', () => {
    const s = setup();
    const r = resolveToken({
      paths: s.paths,
      store: s.store,
      flags: { authTokenFile: s.flagFile },
      env: { PORTHOLE_AUTH_TOKEN: envToken },
      configTokenFile: s.configFile,
      create: true,
    });
    assert.equal(r.token, flagFileToken);
    assert.equal(r.source, 'flag-file');
    assert.equal(r.describe, `--auth-token-file ${s.flagFile}`);
  });

  test('PORTHOLE_AUTH_TOKEN beats config and store; empty counts as unset', () => {
    const s = setup();
    const base = { paths: s.paths, store: s.store, configTokenFile: s.configFile, create: true };
    const r = resolveToken({ ...base, env: { PORTHOLE_AUTH_TOKEN: envToken } });
    assert.equal(r.token, envToken);
    assert.equal(r.source, 'env');
    assert.equal(resolveToken({ ...base, env: { PORTHOLE_AUTH_TOKEN: '' } }).source, 'config-file');
  });

  test('[auth] token_file beats the store', () => {
    const s = setup();
    const r = resolveToken({ paths: s.paths, store: s.store, env: {}, configTokenFile: s.configFile, create: true });
    assert.equal(r.token, configToken);
    assert.equal(r.source, 'config-file');
  });

  test('the store is last', () => {
    const s = setup();
    const r = resolveToken({ paths: s.paths, store: s.store, env: {}, create: false });
    assert.equal(r.token, storeToken);
    assert.equal(r.source, 'store');
    assert.equal(r.generated, false);
    assert.ok(!r.describe.includes(storeToken));
  });

  test('supplied tokens are validated (TOKEN_WEAK names the source)', () => {
    const s = setup();
    const base = { paths: s.paths, store: s.store, env: {}, create: true };
    assert.throws(() => resolveToken({ ...base, flags: { authToken: 'hunter2' } }), { code: 'TOKEN_WEAK' });
    assert.throws(() => resolveToken({ ...base, env: { PORTHOLE_AUTH_TOKEN: 'hunter2' } }), {
      code: 'TOKEN_WEAK',
      message: /PORTHOLE_AUTH_TOKEN/,
    });
    const weakFile = tokenFile('ph_short');
    assert.throws(
      () => resolveToken({ ...base, configTokenFile: weakFile }),
      (err: unknown) => {
        assert.ok(isPortholeError(err, 'TOKEN_WEAK'));
        assert.ok(err.message.includes(weakFile));
        assert.ok(!err.message.includes('ph_short'));
        return true;
      },
    );
  });

  test('a missing token file is SECRET_FILE_UNREADABLE; an open one is SECRET_FILE_INSECURE', () => {
    const s = setup();
    const base = { paths: s.paths, store: s.store, env: {}, create: true };
    const missing = join(root, 'no-such-token');
    assert.throws(() => resolveToken({ ...base, flags: { authTokenFile: missing } }), {
      code: 'SECRET_FILE_UNREADABLE',
    });
    assert.throws(() => resolveToken({ ...base, configTokenFile: missing }), { code: 'SECRET_FILE_UNREADABLE' });
    if (!posixOnly) {
      const open = tokenFile(generateToken(), 0o644);
      assert.throws(() => resolveToken({ ...base, flags: { authTokenFile: open } }), {
        code: 'SECRET_FILE_INSECURE',
      });
    }
  });
});

describe('token lifecycle', () => {
  test('first run generates, stores and records issuance', () => {
    const paths = freshHome();
    const store = openSecretStore(paths, { env: NO_BUS });
    const r = resolveToken({ paths, store, env: {}, create: true });
    assert.match(r.token, /^ph_[A-Za-z0-9_-]{43}$/);
    assert.equal(r.generated, true);
    assert.equal(r.source, 'store');
    assert.equal(readFileSync(paths.tokenFile, 'utf8').trim(), r.token);
    const state = readState(paths);
    assert.equal(state.token?.store, 'file');
    assert.ok(!Number.isNaN(Date.parse(state.token?.issuedAt ?? '')));
    assert.ok(!readFileSync(paths.stateFile, 'utf8').includes(r.token), 'state.json holds the token');
    // Second run reads it back.
    const again = resolveToken({ paths, store, env: {}, create: true });
    assert.equal(again.token, r.token);
    assert.equal(again.generated, false);
  });

  test('a stored token that disappears is TOKEN_MISSING, never regenerated', () => {
    const paths = freshHome();
    const store = openSecretStore(paths, { env: NO_BUS });
    resolveToken({ paths, store, env: {}, create: true });
    store.delete('token');
    for (const create of [true, false]) {
      assert.throws(
        () => resolveToken({ paths, store, env: {}, create }),
        (err: unknown) => {
          assert.ok(isPortholeError(err, 'TOKEN_MISSING'));
          assert.ok(err.message.includes('porthole token rotate'));
          return true;
        },
      );
    }
    assert.equal(store.get('token'), undefined);
  });

  test('create:false on a fresh home is TOKEN_MISSING and writes nothing', () => {
    const paths = freshHome();
    const store = openSecretStore(paths, { env: NO_BUS });
    assert.throws(() => resolveToken({ paths, store, env: {}, create: false }), {
      code: 'TOKEN_MISSING',
      message: /porthole init/,
    });
    assert.throws(() => statSync(paths.home), { code: 'ENOENT' });
  });

  test('rotateStoredToken replaces the token and re-records issuance', () => {
    const paths = freshHome();
    const store = openSecretStore(paths, { env: NO_BUS });
    const first = resolveToken({ paths, store, env: {}, create: true }).token;
    const rotated = rotateStoredToken(paths, store);
    assert.match(rotated, /^ph_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(rotated, first);
    assert.equal(resolveToken({ paths, store, env: {}, create: false }).token, rotated);
    // Rotation is also the way out of TOKEN_MISSING.
    store.delete('token');
    const fresh = rotateStoredToken(paths, store);
    assert.equal(resolveToken({ paths, store, env: {}, create: false }).token, fresh);
  });
});

test('the keyring tools are found by absolute PATH entries only (never the working directory)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-path-'));
  const cwd = process.cwd();
  try {
    writeFileSync(join(dir, 'secret-tool'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    process.chdir(dir);
    assert.equal(findTool('secret-tool', { PATH: `.:${''}:relative/bin` }), undefined);
    assert.equal(findTool('secret-tool', { PATH: `./:${dir}` }), join(dir, 'secret-tool'));
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});
