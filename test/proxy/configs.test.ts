// What `porthole proxy-config caddy|nginx` prints, by option: the production defaults
// (Caddy's automatic HTTPS, nginx's marked certificate paths, the http → https redirect),
// the directives porthole depends on, defaults read from porthole.toml, and refusals.
// (test/e2e/reverse-proxy.test.ts runs the output in real nginx and Caddy.)
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { proxyConfigCommand } from '../../src/cli/proxy.js';
import { isPortholeError } from '../../src/errors.js';
import { caddyConfig } from '../../src/proxy/caddy.js';
import { nginxConfig } from '../../src/proxy/nginx.js';
import { type ProxyConfigOptions, resolveProxyOptions } from '../../src/proxy/options.js';
import { pingUrlOf } from '../../src/proxy/probe.js';
import { tempDir } from '../helpers/servers.js';

const base: ProxyConfigOptions = { publicUrl: 'https://desk.example.com', upstream: { host: '127.0.0.1', port: 7070 } };
const nginx = (o: Partial<ProxyConfigOptions> = {}) => nginxConfig(resolveProxyOptions({ ...base, ...o }));
const caddy = (o: Partial<ProxyConfigOptions> = {}) => caddyConfig(resolveProxyOptions({ ...base, ...o }));

describe('nginx config', () => {
  test('production defaults: 443 on both families, certificate paths to fill in, a port-80 redirect', () => {
    const c = nginx();
    assert.match(c, /^\s+listen 443 ssl;$/m);
    assert.match(c, /^\s+listen \[::\]:443 ssl;$/m);
    assert.match(c, /^\s+server_name desk\.example\.com;$/m);
    assert.match(c, /ssl_certificate\s+\/etc\/ssl\/porthole\/desk\.example\.com\/fullchain\.pem;\s+# <-- FILL IN/);
    assert.match(c, /ssl_certificate_key \/etc\/ssl\/porthole\/desk\.example\.com\/privkey\.pem;\s+# <-- FILL IN/);
    assert.match(c, /listen 80;[\s\S]*return 308 https:\/\/desk\.example\.com\$request_uri;/);
  });

  test('what porthole needs: streaming, long timeouts, upgrades, the proxy\'s own forwarding headers', () => {
    const c = nginx();
    for (const line of [
      'proxy_pass http://127.0.0.1:7070;',
      'proxy_http_version 1.1;',
      'proxy_buffering off;',
      'proxy_request_buffering off;',
      'proxy_read_timeout 1h;',
      'proxy_send_timeout 1h;',
      'proxy_set_header Upgrade $http_upgrade;',
      'proxy_set_header Connection $porthole_connection_upgrade;',
      'proxy_set_header Host $http_host;',
      'proxy_set_header X-Forwarded-For $remote_addr;',
      'proxy_set_header X-Forwarded-Proto $scheme;',
      'proxy_set_header X-Forwarded-Host $http_host;',
    ]) {
      assert.ok(c.includes(line), line);
    }
    // Authorization is nginx's default pass-through: nothing may override or drop it.
    assert.doesNotMatch(c, /proxy_set_header Authorization/i);
    assert.doesNotMatch(c, /^\s*location[^{]*_porthole/m, 'no location treats porthole paths specially');
    assert.match(c, /public_url = "https:\/\/desk\.example\.com"/);
    assert.match(c, /trusted_proxies = \["127\.0\.0\.1"\]/);
  });

  test('for tests and custom setups: listen address, certificate files, no redirect; IPv6 upstream', () => {
    const c = nginx({
      listen: { host: '127.0.0.1', port: 8443 },
      tls: { cert: '/tmp/c.pem', key: '/tmp/k.pem' },
      httpRedirect: false,
      upstream: { host: '::1', port: 7070 },
    });
    assert.match(c, /^\s+listen 127\.0\.0\.1:8443 ssl;$/m);
    assert.doesNotMatch(c, /listen \[::\]/);
    assert.doesNotMatch(c, /FILL IN|listen 80|return 308/);
    assert.match(c, /ssl_certificate\s+\/tmp\/c\.pem;/);
    assert.match(c, /proxy_pass http:\/\/\[::1\]:7070;/);
    assert.match(c, /trusted_proxies = \["::1"\]/);
  });

  test('http public URL on a LAN: plain listen on its port, no TLS, no redirect', () => {
    const c = nginx({ publicUrl: 'http://192.168.1.10:8080' });
    assert.match(c, /^\s+listen 8080;$/m);
    assert.doesNotMatch(c, /ssl|return 308/);
  });
});

describe('Caddyfile', () => {
  test("production default: the public name as site address, Caddy's automatic HTTPS, no admin changes", () => {
    const c = caddy();
    assert.match(c, /^https:\/\/desk\.example\.com \{$/m);
    assert.doesNotMatch(c, /^\s*tls |auto_https|admin |bind /m);
    assert.match(c, /reverse_proxy 127\.0\.0\.1:7070 \{/);
    assert.match(c, /flush_interval -1/);
    assert.match(c, /read_timeout 0/);
    assert.match(c, /automatic HTTPS/);
  });

  test('for tests: bind, certificate files, admin off, no redirects; the listen port in the site address', () => {
    const c = caddy({
      publicUrl: 'https://desk.example.test:8443',
      listen: { host: '127.0.0.1', port: 8443 },
      tls: { cert: '/tmp/c.pem', key: '/tmp/k.pem' },
      httpRedirect: false,
      caddyAdmin: 'off',
    });
    assert.match(c, /^\tadmin off$/m);
    assert.match(c, /^\tauto_https disable_redirects$/m);
    assert.match(c, /^https:\/\/desk\.example\.test:8443 \{$/m);
    assert.match(c, /^\tbind 127\.0\.0\.1$/m);
    assert.match(c, /^\ttls \/tmp\/c\.pem \/tmp\/k\.pem$/m);
  });
});

describe('refusals', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return isPortholeError(err) ? err.code : String(err);
    }
    return 'no error';
  };

  test('an invalid public URL, a wildcard upstream, values that could inject directives', () => {
    assert.equal(code(() => nginx({ publicUrl: 'http://desk.example.com' })), 'INVALID_ARGUMENT');
    assert.equal(code(() => nginx({ publicUrl: 'https://desk.example.com/app' })), 'INVALID_ARGUMENT');
    assert.equal(code(() => nginx({ upstream: { host: '0.0.0.0', port: 7070 } })), 'INVALID_ARGUMENT');
    assert.equal(code(() => nginx({ upstream: { host: '127.0.0.1', port: 0 } })), 'INVALID_ARGUMENT');
    assert.equal(code(() => nginx({ tls: { cert: '/tmp/c.pem; include /etc/passwd', key: '/k' } })), 'INVALID_ARGUMENT');
    assert.equal(code(() => caddy({ tls: { cert: '/tmp/c.pem\n}\n', key: '/k' } })), 'INVALID_ARGUMENT');
    assert.equal(code(() => caddy({ caddyAdmin: 'off }' })), 'INVALID_ARGUMENT');
  });

  test('pingUrlOf: a path prefix is kept; credentials, query and other schemes are refused', () => {
    assert.equal(pingUrlOf('https://desk.example.com').href, 'https://desk.example.com/_porthole/ping');
    assert.equal(pingUrlOf('https://desk.example.com/').href, 'https://desk.example.com/_porthole/ping');
    assert.equal(pingUrlOf('https://desk.example.com/base/').href, 'https://desk.example.com/base/_porthole/ping');
    for (const bad of ['https://a:b@desk.example.com', 'https://desk.example.com/?x=1', 'ftp://desk.example.com', 'nope']) {
      assert.equal(code(() => pingUrlOf(bad)), 'INVALID_ARGUMENT', bad);
    }
  });
});

describe('porthole proxy-config (the command function)', () => {
  function run(home: string, kind: string, flags: Record<string, unknown>) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d));
    stderr.on('data', (d: Buffer) => (err += d));
    const code = proxyConfigCommand({ env: { PORTHOLE_HOME: home }, stdout, stderr }, kind, flags);
    return { code, out, err };
  }

  test("defaults come from porthole.toml: public_url, and the gateway's bind (a wildcard → loopback)", () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.dir, 'porthole.toml'), '[gateway]\nhost = "0.0.0.0"\nport = 7171\npublic_url = "https://desk.example.org"\n');
      const r = run(dir.dir, 'caddy', {});
      assert.equal(r.code, 0);
      assert.match(r.out, /^https:\/\/desk\.example\.org \{$/m);
      assert.match(r.out, /reverse_proxy 127\.0\.0\.1:7171 /);
      assert.match(r.err, /trusted_proxies = \["127\.0\.0\.1"\]/, 'the hint goes to stderr');
      assert.doesNotMatch(r.out, /^porthole:/m, 'stdout holds only the config');
    } finally {
      dir.cleanup();
    }
  });

  test('no public URL anywhere, a lone --cert, an unknown proxy: INVALID_ARGUMENT', () => {
    const dir = tempDir();
    try {
      const code = (flags: Record<string, unknown>, kind = 'nginx') => {
        try {
          run(dir.dir, kind, flags);
          return 'no error';
        } catch (err) {
          return isPortholeError(err) ? err.code : String(err);
        }
      };
      assert.equal(code({}), 'INVALID_ARGUMENT');
      assert.equal(code({ publicUrl: 'https://d.example', cert: '/c.pem' }), 'INVALID_ARGUMENT');
      assert.equal(code({ publicUrl: 'https://d.example' }, 'apache'), 'INVALID_ARGUMENT');
      assert.equal(code({ publicUrl: 'https://d.example', upstream: 'nope' }), 'INVALID_ARGUMENT');
    } finally {
      dir.cleanup();
    }
  });
});
