// The console's settings keeper (src/gateway/api/settings.ts) on real files: sources as
// `config check` reports them, keys set above state.json refused (SETTING_LOCKED), values
// checked like porthole.toml's (CONFIG_INVALID listing every problem), the exposure rules,
// saving into state.json `settings` only, and what a restart would change.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createSettingsKeeper } from '../../src/gateway/api/settings.js';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigInputs } from '../../src/config/types.js';
import { isPortholeError, type PortholeError } from '../../src/errors.js';
import { statePaths } from '../../src/secrets/paths.js';
import { readState } from '../../src/secrets/state.js';

let home: string;
const TOML = '[tunnel]\nrelay = "relay.example.com:443"\n';

function keeper(inputs: Omit<ConfigInputs, 'state' | 'home'> = {}, authMode: 'token' | 'none' = 'token', onSaved?: () => void) {
  const all = { home, env: {}, flags: {}, ...inputs };
  const paths = statePaths(home);
  const running = loadConfig({ ...all, state: readState(paths).settings ?? {} }).config;
  return createSettingsKeeper({ paths, running, inputs: all, authMode, ...(onSaved ? { onSaved } : {}) });
}

function rejects(fn: () => unknown, code: string): PortholeError {
  try {
    fn();
  } catch (err) {
    assert.ok(isPortholeError(err), String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-settings-'));
  fs.writeFileSync(path.join(home, 'porthole.toml'), TOML);
});
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

describe('console settings', () => {
  test('read: the six console keys with value and source, as config check says', () => {
    const v = keeper({ env: { PORTHOLE_HOST: '127.0.0.1' }, flags: { subdomain: 'mydesk' } }).read();
    assert.deepEqual(Object.keys(v.settings).sort(), [
      'gateway.host',
      'gateway.public_url',
      'tailscale.mode',
      'tunnel.auto_start',
      'tunnel.relay',
      'tunnel.subdomain',
    ]);
    assert.deepEqual(v.settings['tunnel.relay'], { value: 'relay.example.com:443', source: 'file' });
    assert.deepEqual(v.settings['gateway.host'], { value: '127.0.0.1', source: 'env' });
    assert.deepEqual(v.settings['tunnel.subdomain'], { value: 'mydesk', source: 'flag' });
    assert.deepEqual(v.settings['gateway.public_url'], { value: null, source: 'default' });
    assert.deepEqual(v.settings['tunnel.auto_start'], { value: false, source: 'default' });
    assert.deepEqual(v.restartRequired, []);
  });

  test('save: into state.json settings (never porthole.toml); restartRequired until the next start', () => {
    let saved = 0;
    const k = keeper({}, 'token', () => saved++);
    const v = k.save({ 'gateway.public_url': 'https://Desk.Example.com/', 'tunnel.auto_start': true }, { by: 'owner', cred: 'token' });
    assert.equal(saved, 1);
    assert.deepEqual(v.settings['gateway.public_url'], { value: 'https://desk.example.com', source: 'state', running: null });
    assert.deepEqual(v.settings['tunnel.auto_start'], { value: true, source: 'state', running: false });
    assert.deepEqual(v.restartRequired.sort(), ['gateway.public_url', 'tunnel.auto_start']);
    assert.deepEqual(readState(statePaths(home)).settings, { 'gateway.public_url': 'https://desk.example.com', 'tunnel.auto_start': true });
    assert.equal(fs.readFileSync(path.join(home, 'porthole.toml'), 'utf8'), TOML);
    assert.equal((fs.statSync(path.join(home, 'state.json')).mode & 0o777).toString(8), '600');
    // What the next start loads (loadConfig's "state" layer), and a keeper made then is settled.
    const next = loadConfig({ home, env: {}, flags: {}, state: readState(statePaths(home)).settings ?? {} });
    assert.equal(next.sources['gateway.public_url'], 'state');
    assert.equal(next.config.gateway.public_url, 'https://desk.example.com');
    assert.deepEqual(keeper().read().restartRequired, []);
    // The audit log names the keys and who, never values.
    const audit = fs.readFileSync(path.join(home, 'audit.log'), 'utf8');
    assert.match(audit, /"event":"settings saved","keys":"gateway.public_url,tunnel.auto_start","by":"owner","cred":"token"/);
    // null clears a key; clearing the last one removes `settings`.
    k.save({ 'gateway.public_url': null });
    assert.deepEqual(readState(statePaths(home)).settings, { 'tunnel.auto_start': true });
    const cleared = k.save({ 'tunnel.auto_start': null });
    assert.equal(readState(statePaths(home)).settings, undefined);
    assert.deepEqual(cleared.restartRequired, []);
  });

  test('a key set in porthole.toml, the environment or a flag is refused, saying where', () => {
    const k = keeper({ env: { PORTHOLE_HOST: '127.0.0.1' }, flags: { subdomain: 'mydesk' } });
    const file = rejects(() => k.save({ 'tunnel.relay': 'other.example.com:443' }), 'SETTING_LOCKED');
    assert.equal(file.status, 409);
    assert.ok(file.message.includes(path.join(home, 'porthole.toml')), file.message);
    assert.match(rejects(() => k.save({ 'gateway.host': '0.0.0.0' }), 'SETTING_LOCKED').message, /PORTHOLE_HOST/);
    assert.match(rejects(() => k.save({ 'tunnel.subdomain': 'other' }), 'SETTING_LOCKED').message, /--subdomain/);
    // Nothing was written.
    assert.equal(readState(statePaths(home)).settings, undefined);
  });

  test('values are checked like the file: every problem listed, nothing saved', () => {
    const k = keeper();
    const err = rejects(
      () => k.save({ 'gateway.public_url': 'http://desk.example.com/app', 'tunnel.auto_start': 'yes', 'tailscale.mode': 'on' }),
      'CONFIG_INVALID',
    );
    assert.equal(err.status, 400);
    assert.equal(err.details?.length, 3);
    assert.match(err.details![0]!, /^gateway.public_url: /);
    assert.match(err.details![1]!, /^tunnel.auto_start: expected true or false, got a string/);
    assert.match(err.details![2]!, /^tailscale.mode: expected one of "off", "serve", "funnel"/);
    assert.match(rejects(() => k.save({ 'auth.mode': 'password' }), 'CONFIG_INVALID').message, /not a console setting/);
    assert.match(rejects(() => k.save({}), 'CONFIG_INVALID').message, /no settings given/);
    assert.equal(readState(statePaths(home)).settings, undefined);
  });

  test('a combination serve would refuse to start with is refused (EXPOSURE_CONFLICT)', () => {
    const k = keeper();
    k.save({ 'gateway.host': '0.0.0.0' });
    const err = rejects(() => k.save({ 'tailscale.mode': 'serve' }), 'EXPOSURE_CONFLICT');
    assert.match(err.message, /loopback/);
    assert.deepEqual(readState(statePaths(home)).settings, { 'gateway.host': '0.0.0.0' });
    // Without authentication a LAN bind is refused too.
    fs.rmSync(path.join(home, 'state.json'));
    rejects(() => keeper({}, 'none').save({ 'gateway.host': '0.0.0.0' }), 'EXPOSURE_CONFLICT');
  });

  test('without load inputs (an embedding program), values the program changed count as its own', () => {
    const paths = statePaths(home);
    const running = loadConfig({ home, env: {}, flags: { publicUrl: 'https://app.example.com' } }).config;
    const k = createSettingsKeeper({ paths, running, authMode: 'token' });
    assert.deepEqual(k.read().settings['gateway.public_url'], { value: 'https://app.example.com', source: 'flag' });
    assert.match(rejects(() => k.save({ 'gateway.public_url': 'https://x.example.com' }), 'SETTING_LOCKED').message, /--public-url/);
    assert.equal(k.read().settings['tunnel.auto_start'].source, 'default');
  });
});
