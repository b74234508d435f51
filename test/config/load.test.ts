// loadConfig against real files in temp dirs: defaults, precedence, derived defaults,
// strictness, secrets, paths and the problems env and flags can bring.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { type ConfigInputs, CONFIG_KEYS, type LoadedConfig, loadConfig } from '../../src/config/index.js';
import { PortholeError } from '../../src/errors.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh home; with `toml`, porthole.toml in it. */
function home(toml?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-config-'));
  dirs.push(dir);
  if (toml !== undefined) fs.writeFileSync(path.join(dir, 'porthole.toml'), toml);
  return dir;
}

const load = (inputs: Partial<ConfigInputs> & { home: string }): LoadedConfig => loadConfig({ env: {}, ...inputs });

function failure(fn: () => unknown): PortholeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PortholeError, `expected a PortholeError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

const mentions = (err: PortholeError, text: string): boolean =>
  err.message.includes(text) || (err.details ?? []).some((d) => d.includes(text));

test('defaults with no file, env, flags or state', () => {
  const { config, sources, file, notes } = load({ home: home() });
  assert.equal(file, undefined);
  assert.equal(config.version, 1);
  assert.deepEqual(config.gateway, {
    host: '127.0.0.1',
    port: 7070,
    allowed_origins: [],
    trusted_proxies: [],
    allow_cidrs: [],
    target_timeout: 30,
    stall_timeout: 60,
    max_requests_per_client: 256,
    tls: 'off',
  });
  assert.equal(config.auth.mode, 'token');
  assert.equal(config.auth.loopback_exempt, true);
  assert.equal(config.auth.session_idle, 604800);
  assert.equal(config.auth.session_max, 2592000);
  assert.deepEqual(config.auth.rate_limit, { max_failures: 5, window: 900, ban: 300 });
  assert.equal(config.auth.trusted_proxy.user_header, 'X-Forwarded-User');
  assert.deepEqual(config.tunnel, { enabled: false, auto_start: false, acme: false, acme_directory: 'https://acme-v02.api.letsencrypt.org/directory' });
  assert.deepEqual(config.tailscale, { mode: 'off', reset_on_exit: false, allow_users: [] });
  assert.deepEqual(config.remote, { transport: 'http' });
  assert.deepEqual(Object.keys(sources).sort(), [...CONFIG_KEYS].sort());
  assert.ok(Object.values(sources).every((s) => s === 'default'));
  assert.deepEqual(notes, {});
});

test('default arrays are not shared between loads', () => {
  const a = load({ home: home() });
  a.config.gateway.allowed_origins.push('example.com');
  assert.deepEqual(load({ home: home() }).config.gateway.allowed_origins, []);
});

test('a file in home is read and its values marked "file"', () => {
  const dir = home('version = 1\n[gateway]\nhost = "0.0.0.0"\nport = 8080\n[tailscale]\nmode = "serve"\n');
  const { config, sources, file } = load({ home: dir });
  assert.equal(file, path.join(dir, 'porthole.toml'));
  assert.equal(config.gateway.host, '0.0.0.0');
  assert.equal(config.gateway.port, 8080);
  assert.equal(config.tailscale.mode, 'serve');
  assert.equal(sources['gateway.port'], 'file');
  assert.equal(sources['version'], 'file');
  assert.equal(sources['gateway.target'], 'default');
});

test('precedence: flag > env > file > state > default, key by key', () => {
  const dir = home(
    '[gateway]\nhost = "127.0.0.2"\nport = 9000\nallowed_origins = ["https://file.example"]\ntarget_timeout = 12.5\n',
  );
  const state = {
    'gateway.port': 8000,
    'gateway.target': 'http://127.0.0.1:3000',
    'gateway.target_timeout': 5,
    'tunnel.subdomain': 'from-state',
  };
  const { config, sources } = load({
    home: dir,
    state,
    env: { PORTHOLE_PORT: '9100', PORTHOLE_ALLOWED_ORIGINS: ' https://env.example , ,laptop.ts.net ' },
    flags: { port: 9200, subdomain: 'from-flag' },
  });
  assert.equal(config.gateway.port, 9200);
  assert.equal(sources['gateway.port'], 'flag');
  assert.deepEqual(config.gateway.allowed_origins, ['https://env.example', 'laptop.ts.net']);
  assert.equal(sources['gateway.allowed_origins'], 'env');
  assert.equal(config.gateway.host, '127.0.0.2');
  assert.equal(sources['gateway.host'], 'file');
  assert.equal(config.gateway.target_timeout, 12.5);
  assert.equal(sources['gateway.target_timeout'], 'file');
  assert.equal(config.gateway.target, 'http://127.0.0.1:3000');
  assert.equal(sources['gateway.target'], 'state');
  assert.equal(config.tunnel.subdomain, 'from-flag');
  assert.equal(sources['tunnel.subdomain'], 'flag');
  assert.equal(sources['auth.mode'], 'default');

  // Without the flag, env wins; without env, the file; without the file, state.
  assert.equal(load({ home: dir, state, env: { PORTHOLE_PORT: '9100' } }).config.gateway.port, 9100);
  assert.equal(load({ home: dir, state }).config.gateway.port, 9000);
  const stateOnly = load({ home: home(), state });
  assert.equal(stateOnly.config.gateway.port, 8000);
  assert.equal(stateOnly.sources['gateway.port'], 'state');
});

test('string flags are parsed like env values; list flags accept arrays of comma lists', () => {
  const { config, sources } = load({
    home: home(),
    flags: {
      port: '0',
      authMode: 'password',
      allowedOrigins: ['https://a.example,https://b.example', 'c.example'],
      trustedProxies: '10.0.0.0/8, ::1',
      tailscale: 'funnel',
      tailscaleResetOnExit: true,
      tunnel: true,
      relay: 'relay.example:443',
      target: '3000',
    },
  });
  assert.equal(config.gateway.port, 0);
  assert.equal(config.auth.mode, 'password');
  assert.deepEqual(config.gateway.allowed_origins, ['https://a.example', 'https://b.example', 'c.example']);
  assert.deepEqual(config.gateway.trusted_proxies, ['10.0.0.0/8', '::1']);
  assert.equal(config.tailscale.mode, 'funnel');
  assert.equal(config.tailscale.reset_on_exit, true);
  assert.equal(config.tunnel.enabled, true);
  assert.equal(config.tunnel.relay, 'relay.example:443');
  assert.equal(config.gateway.target, '3000');
  assert.equal(sources['tunnel.enabled'], 'flag');
});

test('loopback_exempt defaults to false with public_url or trusted_proxies, with a note', () => {
  const viaUrl = load({ home: home('[gateway]\npublic_url = "https://desk.example.com"\n') });
  assert.equal(viaUrl.config.auth.loopback_exempt, false);
  assert.equal(viaUrl.sources['auth.loopback_exempt'], 'default');
  assert.ok(viaUrl.notes['auth.loopback_exempt']?.includes('gateway.public_url'));

  const viaProxies = load({ home: home(), flags: { trustedProxies: '127.0.0.1' } });
  assert.equal(viaProxies.config.auth.loopback_exempt, false);
  assert.ok(viaProxies.notes['auth.loopback_exempt']?.includes('gateway.trusted_proxies'));

  const emptyProxies = load({ home: home('[gateway]\ntrusted_proxies = []\n') });
  assert.equal(emptyProxies.config.auth.loopback_exempt, true);
  assert.equal(emptyProxies.notes['auth.loopback_exempt'], undefined);
});

test('an explicit loopback_exempt = true still wins over the derived default', () => {
  const dir = home('[gateway]\npublic_url = "https://desk.example.com"\n[auth]\nloopback_exempt = true\n');
  const fromFile = load({ home: dir });
  assert.equal(fromFile.config.auth.loopback_exempt, true);
  assert.equal(fromFile.sources['auth.loopback_exempt'], 'file');
  assert.equal(fromFile.notes['auth.loopback_exempt'], undefined);

  const fromState = load({ home: home(), flags: { publicUrl: 'https://x.example' }, state: { 'auth.loopback_exempt': true } });
  assert.equal(fromState.config.auth.loopback_exempt, true);
  assert.equal(fromState.sources['auth.loopback_exempt'], 'state');

  const flagOff = load({ home: dir, flags: { loopbackExempt: false } });
  assert.equal(flagOff.config.auth.loopback_exempt, false);
  assert.equal(flagOff.sources['auth.loopback_exempt'], 'flag');
});

test('an unknown key is an error naming the dotted key and the file', () => {
  const dir = home('[gateway]\nhots = "127.0.0.1"\n');
  const err = failure(() => load({ home: dir }));
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.ok(mentions(err, 'gateway.hots'));
  assert.ok(mentions(err, path.join(dir, 'porthole.toml')));
  assert.ok(err.message.includes('gateway.hots'));
});

test('unknown sections, misplaced keys and non-table sections are errors', () => {
  const err = failure(() => load({ home: home('[gatway]\nport = 1\n[auth]\nversion = 1\n[tunnel.rate_limit]\nx = 1\n') }));
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.details?.length, 3);
  assert.ok(mentions(err, '"gatway"'));
  assert.ok(mentions(err, 'auth.version'));
  assert.ok(mentions(err, 'tunnel.rate_limit'));

  const notTable = failure(() => load({ home: home('gateway = 5\n') }));
  assert.equal(notTable.code, 'CONFIG_INVALID');
  assert.ok(mentions(notTable, 'gateway'));
});

test('all problems are reported together', () => {
  const dir = home(
    [
      'version = 2',
      '[gateway]',
      'port = "7070"',
      'allowed_origins = ["*", "https://ok.example", "host:80"]',
      'trusted_proxies = ["10.0.0.0/33"]',
      'target_timeout = 0',
      '[auth]',
      'mode = "magic"',
      'public_paths = ["hooks"]',
      'session_idle = -1',
      '[auth.rate_limit]',
      'max_failures = 0',
      '[tailscale]',
      'reset_on_exit = "yes"',
    ].join('\n'),
  );
  const err = failure(() => load({ home: dir, env: { PORTHOLE_HOST: 'bad host!' } }));
  assert.equal(err.code, 'CONFIG_INVALID');
  // version, port, allowed_origins, trusted_proxies, target_timeout, mode, public_paths,
  // session_idle, max_failures, reset_on_exit, PORTHOLE_HOST
  assert.equal(err.details?.length, 11);
  for (const key of ['version', 'gateway.port', 'gateway.allowed_origins', 'auth.mode', 'tailscale.reset_on_exit']) {
    assert.ok(mentions(err, key), key);
  }
  assert.ok(mentions(err, 'PORTHOLE_HOST'));
  assert.ok(err.message.includes(path.join(dir, 'porthole.toml')));
  assert.ok(err.message.includes('11'));
});

test('a TOML syntax error names the file, line and column', () => {
  const dir = home('[gateway]\nport = 7070\nhost = = "x"\n[auth]\nmode = "token"\n');
  const err = failure(() => load({ home: dir }));
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.details?.length, 1);
  assert.ok(err.details![0]!.startsWith(`${path.join(dir, 'porthole.toml')}:3:`), err.details![0]);
});

test('a secret key is refused with CONFIG_SECRET_IN_FILE and the value never appears', () => {
  const secret = 'hunter2-very-secret-value';
  const dir = home(`[auth]\nmode = "password"\npassword = "${secret}"\n[tunnel]\nregistration_secret = "${secret}"\n`);
  const err = failure(() => load({ home: dir }));
  assert.equal(err.code, 'CONFIG_SECRET_IN_FILE');
  assert.ok(mentions(err, 'auth.password'));
  assert.ok(mentions(err, 'tunnel.registration_secret'));
  assert.ok(err.message.includes('PORTHOLE_AUTH_TOKEN'));
  assert.ok(err.message.includes('token_file'));
  assert.ok(!JSON.stringify({ m: err.message, d: err.details }).includes(secret));
});

test('a ph_ value anywhere, a token key in an unknown section and a URL password are secrets', () => {
  const token = 'ph_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA';
  const cases = [
    `[gateway]\nallowed_origins = ["${token}"]\n`,
    `[gateway]\ntarget = "phc_${token.slice(3)}"\n`,
    `[myapp]\nauth_token = "${token}"\n`,
    `api_key = "${token}"\n`,
    `[remote]\nurl = "https://me:${token}@desk.example"\n`,
  ];
  for (const toml of cases) {
    const err = failure(() => load({ home: home(toml) }));
    assert.equal(err.code, 'CONFIG_SECRET_IN_FILE', toml);
    assert.ok(!JSON.stringify({ m: err.message, d: err.details }).includes(token.slice(3)), toml);
  }
});

test('secrets are reported along with the file\'s other problems', () => {
  const err = failure(() => load({ home: home('[auth]\ntoken = "abc"\nmode = "nope"\n') }));
  assert.equal(err.code, 'CONFIG_SECRET_IN_FILE');
  assert.equal(err.details?.length, 2);
  assert.ok(mentions(err, 'auth.mode'));
});

test('token_file = "path" is not a secret and relative paths resolve against the file', () => {
  const dir = home();
  const sub = path.join(dir, 'conf');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'custom.toml');
  fs.writeFileSync(
    file,
    '[auth]\ntoken_file = "secrets/token"\n[tunnel]\nca = "/etc/ca.pem"\ntls_cert = "../c.pem"\ntls_key = "k.pem"\n[remote]\ntoken_file = "r"\n',
  );
  const { config, file: used } = load({ home: dir, configFile: file });
  assert.equal(used, file);
  assert.equal(config.auth.token_file, path.join(sub, 'secrets', 'token'));
  assert.equal(config.tunnel.ca, '/etc/ca.pem');
  assert.equal(config.tunnel.tls_cert, path.join(dir, 'c.pem'));
  assert.equal(config.tunnel.tls_key, path.join(sub, 'k.pem'));
  assert.equal(config.remote.token_file, path.join(sub, 'r'));

  // A flag resolves against the working directory, a state value against home.
  assert.equal(load({ home: dir, flags: { authTokenFile: 'tok' } }).config.auth.token_file, path.resolve('tok'));
  assert.equal(load({ home: dir, state: { 'auth.token_file': 'tok' } }).config.auth.token_file, path.join(dir, 'tok'));
});

test('an explicit --config that does not exist is an error; a missing home file is not', () => {
  const dir = home();
  const missing = path.join(dir, 'nope.toml');
  const err = failure(() => load({ home: dir, configFile: missing }));
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.ok(mentions(err, missing));
  assert.equal(load({ home: dir }).file, undefined);
});

test('--config takes the place of the home file', () => {
  const dir = home('[gateway]\nport = 1111\n');
  const other = path.join(dir, 'other.toml');
  fs.writeFileSync(other, '[gateway]\nport = 2222\n');
  assert.equal(load({ home: dir, configFile: other }).config.gateway.port, 2222);
});

test('invalid env values name the variable', () => {
  const err = failure(() =>
    load({ home: home(), env: { PORTHOLE_PORT: 'abc', PORTHOLE_ALLOWED_ORIGINS: 'https://ok.example,https://x/y' } }),
  );
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.details?.length, 2);
  assert.ok(mentions(err, 'PORTHOLE_PORT'));
  assert.ok(mentions(err, 'PORTHOLE_ALLOWED_ORIGINS'));
  // Empty variables count as unset.
  assert.equal(load({ home: home(), env: { PORTHOLE_PORT: '', PORTHOLE_HOST: ' ' } }).config.gateway.port, 7070);
});

test('invalid flag values name the flag', () => {
  const err = failure(() =>
    load({
      home: home(),
      flags: { port: 70000, authMode: 'magic', tailscale: 'on', publicUrl: 'https://x.example/app', subdomain: 'xn--abc' },
    }),
  );
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.details?.length, 5);
  for (const flag of ['--port', '--auth-mode', '--tailscale', '--public-url', '--subdomain']) {
    assert.ok(mentions(err, flag), flag);
  }
  const portText = failure(() => load({ home: home(), flags: { port: '80a' } }));
  assert.ok(mentions(portText, '--port'));
});

test('state values are checked like file values and name state.json', () => {
  const dir = home();
  const err = failure(() => load({ home: dir, state: { 'gateway.port': 'x', 'gateway.colour': 'blue' } }));
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.details?.length, 2);
  assert.ok(err.details!.every((d) => d.includes(path.join(dir, 'state.json'))));
  assert.ok(mentions(err, 'gateway.colour'));
  // null clears a saved setting
  assert.equal(load({ home: dir, state: { 'gateway.public_url': null } }).sources['gateway.public_url'], 'default');
});

test('values are normalised where other modules compare exactly', () => {
  const { config } = load({
    home: home(
      [
        '[gateway]',
        'host = "[::1]"',
        'public_url = "HTTPS://Desk.Example.com:443/"',
        'allowed_origins = ["https://App.Example:443/", "http://x.example:8080", "capacitor://localhost", "Laptop.ts.net", "::1", "192.168.1.42"]',
        '[tunnel]',
        'subdomain = "MyDesk"',
      ].join('\n'),
    ),
  });
  assert.equal(config.gateway.host, '::1');
  assert.equal(config.gateway.public_url, 'https://desk.example.com');
  assert.deepEqual(config.gateway.allowed_origins, [
    'https://app.example',
    'http://x.example:8080',
    'capacitor://localhost',
    'laptop.ts.net',
    '[::1]',
    '192.168.1.42',
  ]);
  assert.equal(config.tunnel.subdomain, 'mydesk');
});

test('keys that contradict each other are problems', () => {
  const mode = failure(() => load({ home: home('[auth]\nmode = "trusted-proxy"\n') }));
  assert.equal(mode.code, 'CONFIG_INVALID');
  assert.ok(mentions(mode, 'gateway.trusted_proxies'));
  assert.equal(
    load({ home: home('[auth]\nmode = "trusted-proxy"\n'), flags: { trustedProxies: '10.0.0.1' } }).config.auth.mode,
    'trusted-proxy',
  );

  const tls = failure(() => load({ home: home('[tunnel]\ntls_cert = "c.pem"\n') }));
  assert.ok(mentions(tls, 'tunnel.tls_key'));

  const sessions = failure(() => load({ home: home('[auth]\nsession_idle = 100\nsession_max = 10\n') }));
  assert.ok(mentions(sessions, 'auth.session_max'));
});
