// The macOS Keychain backend, run on Linux against test/tools/macos-security (an emulator
// of the `security` commands it drives; see its README): the store through the library's
// platform option, with the tool found on PATH and state under the emulator's HOME. What
// is checked: values round-trip (printable, unicode, newlines, quotes) and never appear in
// any argv; homes with spaces, quotes and backslashes stay separate; the backend is
// recorded and a home is not opened by another system's keyring; locked / missing /
// temporary / hanging keychains mean files for a new home and KEYRING_UNAVAILABLE for a
// keyring home; a write that did not take is caught by the read-back; long values are
// refused before anything is written; migration both ways.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isPortholeError } from '../../src/errors.js';
import { createMacosKeychainBackend } from '../../src/secrets/macos-keychain.js';
import { migrateSecrets } from '../../src/secrets/migrate.js';
import { statePaths } from '../../src/secrets/paths.js';
import { readState } from '../../src/secrets/state.js';
import { hasPersistentKeyring, openSecretStore, resolveToken } from '../../src/secrets/store.js';

const EMULATOR_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'tools', 'macos-security');
const DARWIN = { platform: 'darwin' as const };
/** What the real default keychain's path looks like; the emulator keeps its data under HOME. */
const LOGIN_KEYCHAIN = '/Users/porthole-test/Library/Keychains/login.keychain-db';

describe('macOS Keychain backend (security emulator)', () => {
  let root: string;
  let macHome: string;
  let n = 0;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'porthole-kc-'));
    macHome = join(root, 'mac-home');
    mkdirSync(join(macHome, 'Library', 'Keychains'), { recursive: true });
    writeFileSync(join(macHome, 'Library', 'Keychains', 'default-path'), LOGIN_KEYCHAIN);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const env = (extra: Record<string, string> = {}) => ({
    PATH: [EMULATOR_DIR, dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
    HOME: macHome,
    PORTHOLE_SECRET_STORE: 'auto',
    ...extra,
  });
  const home = (name = `home-${++n}`) => join(root, name);
  const flag = (name: string, on: boolean, text = '') => {
    const f = join(macHome, 'Library', 'Keychains', name);
    if (on) writeFileSync(f, text);
    else rmSync(f, { force: true });
  };
  const argvLog = () => {
    const f = join(macHome, 'security-argv.log');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };
  const items = (): { svce: string; acct: string; labl: string; data: string }[] => {
    const f = join(macHome, 'Library', 'Keychains', 'login.keychain-db.json');
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')).items : [];
  };

  test('a usable login keychain is chosen; values round-trip and never reach argv; homes stay apart', () => {
    assert.equal(hasPersistentKeyring({ ...DARWIN, env: env() }), true);
    const a = statePaths(home('with space "quoted" back\\slash'));
    const b = statePaths(home());
    const sa = openSecretStore(a, { ...DARWIN, env: env() });
    const sb = openSecretStore(b, { ...DARWIN, env: env() });
    assert.equal(sa.kind, 'keyring');
    assert.equal(sa.get('token'), undefined);
    const values = ['ph_printable-token_value', 'line\n', 'ünï ☃ $x `y` \'q\' "d" \\', 'porthole-base64:looks-encoded', 'a b', 'x'.repeat(1500)];
    for (const value of values) {
      sa.set('tunnel-registration-secret', value);
      assert.equal(sa.get('tunnel-registration-secret'), value);
    }
    sa.set('token', 'home-a');
    sb.set('token', 'home-b');
    assert.equal(sa.get('token'), 'home-a');
    assert.equal(sb.get('token'), 'home-b');
    // One item per (home, name), addressed by the home's real path, labelled for humans.
    const mine = items().filter((i) => i.acct === `token@${a.home}`);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.svce, 'porthole');
    assert.equal(mine[0]!.labl, `porthole token (${a.home})`);
    // Printable secrets are stored as written (what Keychain Access shows), others encoded.
    assert.equal(Buffer.from(mine[0]!.data, 'hex').toString(), 'home-a');

    sa.delete('token');
    sa.delete('token');
    assert.equal(sa.get('token'), undefined);
    assert.equal(sb.get('token'), 'home-b');
    assert.equal(readState(a).secretStore?.kind, 'keyring');
    assert.equal(readState(a).secretStore?.backend, 'macos-keychain');
    assert.equal(existsSync(a.secretsDir), false);

    const log = argvLog();
    assert.ok(log.includes('"-i"'), 'writes go through security -i');
    for (const value of [...values, 'home-a', 'home-b']) {
      for (const form of [value, Buffer.from(value).toString('hex'), Buffer.from(value).toString('base64')]) {
        assert.ok(!log.includes(JSON.stringify(form).slice(1, -1)), `a secret reached argv: ${form.slice(0, 20)}`);
      }
    }
  });

  test('the token lives in the keychain: generated once, read back, never regenerated', () => {
    const paths = statePaths(home());
    const store = openSecretStore(paths, { ...DARWIN, env: env() });
    const first = resolveToken({ paths, store, env: {}, create: true });
    assert.match(first.token, /^ph_[A-Za-z0-9_-]{43}$/);
    assert.equal(existsSync(paths.tokenFile), false);
    const again = resolveToken({ paths, store: openSecretStore(paths, { ...DARWIN, env: env() }), env: {}, create: true });
    assert.equal(again.token, first.token);
    // Gone from the keychain behind porthole's back: an error, never a new token.
    openSecretStore(paths, { ...DARWIN, env: env() }).delete('token');
    assert.throws(() => resolveToken({ paths, store: openSecretStore(paths, { ...DARWIN, env: env() }), env: {}, create: true }), { code: 'TOKEN_MISSING' });
  });

  test('locked, missing, temporary or absent keychains: a new home gets files, a keyring home fails clearly', () => {
    const kept = statePaths(home());
    openSecretStore(kept, { ...DARWIN, env: env() }).set('token', 'kept-token');

    for (const [switchName, text, reason] of [
      ['locked', '', /locked.*without the desktop session/],
      ['no-default', '', /no default keychain/],
      ['default-path', '/private/tmp/x/login.keychain-db', /temporary directory/],
    ] as const) {
      flag(switchName, true, text);
      try {
        assert.equal(hasPersistentKeyring({ ...DARWIN, env: env() }), false, switchName);
        const fresh = statePaths(home());
        const s = openSecretStore(fresh, { ...DARWIN, env: env() });
        assert.equal(s.kind, 'file', switchName);
        s.set('token', 'file-token');
        assert.equal(readFileSync(fresh.tokenFile, 'utf8').trim(), 'file-token');
        const forced = () => openSecretStore(statePaths(home()), { ...DARWIN, env: env({ PORTHOLE_SECRET_STORE: 'keyring' }) });
        assert.throws(forced, (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && reason.test(err.message));
        // The keyring home does not fall back to files.
        assert.throws(
          () => openSecretStore(kept, { ...DARWIN, env: env() }).get('token'),
          (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && reason.test(err.message) && /does not fall back to files/.test(err.message),
        );
        assert.equal(existsSync(kept.tokenFile), false);
      } finally {
        flag(switchName, switchName === 'default-path', switchName === 'default-path' ? LOGIN_KEYCHAIN : '');
      }
    }
    // No `security` at all (PATH without it): files.
    assert.equal(hasPersistentKeyring({ ...DARWIN, env: env({ PATH: '/usr/bin:/bin' }) }), false);
    assert.equal(openSecretStore(kept, { ...DARWIN, env: env() }).get('token'), 'kept-token');
  });

  test('a keychain that answers searches but refuses values: a new home (auto) ends up on files, not on an error', () => {
    flag('locked-content', true);
    try {
      // The probe only searches, so it calls the keychain usable.
      assert.equal(hasPersistentKeyring({ ...DARWIN, env: env() }), true);
      const paths = statePaths(home());
      const store = openSecretStore(paths, { ...DARWIN, env: env() });
      const { token } = resolveToken({ paths, store, env: {}, create: true });
      assert.equal(store.kind, 'file');
      assert.equal(readFileSync(paths.tokenFile, 'utf8').trim(), token);
      assert.equal(readState(paths).secretStore?.kind, 'file');
      assert.equal(items().some((i) => i.acct.endsWith(`@${paths.home}`)), false);
      // Asked for by name, the keyring's failure is the answer.
      const forced = statePaths(home());
      const strict = openSecretStore(forced, { ...DARWIN, env: env({ PORTHOLE_SECRET_STORE: 'keyring' }) });
      assert.throws(() => strict.set('token', 'v'), (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE'));
      assert.equal(existsSync(forced.tokenFile), false);
    } finally {
      flag('locked-content', false);
    }
  });

  test('a tool that hangs is cut off by the timeout; a write that did not take is caught', () => {
    const backend = createMacosKeychainBackend({ env: env(), timeoutMs: 300 });
    flag('hang', true);
    try {
      const started = Date.now();
      const p = backend.probe();
      assert.equal(p.ok, false);
      assert.match(p.ok ? '' : p.reason, /did not answer within 0.3 s/);
      assert.ok(Date.now() - started < 5_000);
    } finally {
      flag('hang', false);
    }
    const paths = statePaths(home());
    const store = openSecretStore(paths, { ...DARWIN, env: env() });
    store.set('token', 'v1');
    flag('drop-writes', true);
    try {
      assert.throws(() => store.set('token', 'v2'), (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && /did not read back/.test(err.message));
    } finally {
      flag('drop-writes', false);
    }
    assert.equal(store.get('token'), 'v1');
  });

  test('limits: values too long for one `security -i` line, control characters in the home, unregistered names', () => {
    const paths = statePaths(home());
    const store = openSecretStore(paths, { ...DARWIN, env: env() });
    store.set('token', 'short'); // the home is on the keychain from here on
    const before = items().length;
    assert.throws(() => store.set('token', 'y'.repeat(3000)), (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && /4096-byte command line/.test(err.message));
    assert.equal(items().length, before, 'nothing half-written');
    assert.equal(store.get('token'), 'short');
    const odd = home('new\nline');
    assert.throws(
      () => openSecretStore(statePaths(odd), { ...DARWIN, env: env({ PORTHOLE_SECRET_STORE: 'keyring' }) }).set('token', 'v'),
      (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && /control characters/.test(err.message),
    );
    // In auto mode such a home simply gets files.
    assert.equal(openSecretStore(statePaths(odd), { ...DARWIN, env: env() }).kind, 'keyring');
    const auto = openSecretStore(statePaths(odd), { ...DARWIN, env: env() });
    auto.set('token', 'v');
    assert.equal(auto.kind, 'file');
    // A name `list` would not find is refused in every keyring, before the keyring is asked.
    assert.throws(() => store.set('not-registered', 'v'), { code: 'INTERNAL' });
    assert.throws(() => store.get('../x'), { code: 'INVALID_ARGUMENT' });
  });

  test('a home recorded in another system\'s keyring is not opened here', () => {
    const paths = statePaths(home());
    openSecretStore(paths, { ...DARWIN, env: env() }).set('token', 'mac-token');
    assert.throws(
      () => openSecretStore(paths, { platform: 'linux', env: env() }),
      (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && /macos-keychain keyring.*not this system's \(secret-service\)/.test(err.message),
    );
  });

  test('secrets migrate moves every secret to the keychain and back', () => {
    const paths = statePaths(home());
    const files = openSecretStore(paths, { ...DARWIN, env: env({ PORTHOLE_SECRET_STORE: 'file' }) });
    files.set('token', 'migrated-token');
    files.set('identity-key', 'key-bytes');
    const there = migrateSecrets(paths, 'keyring', { ...DARWIN, env: env() });
    assert.deepEqual(there, { from: 'file', to: 'keyring', moved: ['identity-key', 'token'] });
    assert.equal(existsSync(paths.tokenFile), false);
    assert.equal(readState(paths).secretStore?.backend, 'macos-keychain');
    const kc = openSecretStore(paths, { ...DARWIN, env: env() });
    assert.equal(kc.get('token'), 'migrated-token');
    const back = migrateSecrets(paths, 'file', { ...DARWIN, env: env() });
    assert.deepEqual(back, { from: 'keyring', to: 'file', moved: ['identity-key', 'token'] });
    assert.equal(readFileSync(paths.tokenFile, 'utf8').trim(), 'migrated-token');
    assert.equal(items().some((i) => i.acct.endsWith(`@${paths.home}`)), false);
  });

  test('Windows has no keyring backend: files, and keyring asked for by name is refused with the reason', () => {
    assert.equal(hasPersistentKeyring({ platform: 'win32', env: env() }), false);
    const paths = statePaths(home());
    assert.equal(openSecretStore(paths, { platform: 'win32', env: env() }).kind, 'file');
    assert.throws(
      () => openSecretStore(statePaths(home()), { platform: 'win32', env: env({ PORTHOLE_SECRET_STORE: 'keyring' }) }),
      (err: unknown) => isPortholeError(err, 'KEYRING_UNAVAILABLE') && /Windows Credential Manager is not implemented/.test(err.message),
    );
  });
});
