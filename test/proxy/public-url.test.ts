// gateway.public_url: every validation rule (https for public hosts, http only for private
// ones, origin only, trailing "/" dropped), the URL joining the Host and Origin allowlists
// of a real gateway, and the public URL detected from a trusted proxy's headers.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { checkPublicUrl, isLocalUrlHost } from '../../src/config/validate.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { detectPublicUrl } from '../../src/proxy/detect.js';
import { send } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';

const accepts = (input: string, want: string) => assert.deepEqual(checkPublicUrl(input), { value: want }, input);
const refuses = (input: string, re?: RegExp) => {
  const r = checkPublicUrl(input);
  assert.equal(r.value, undefined, `${input} should be refused`);
  if (re) assert.match(r.problem ?? '', re, input);
};

describe('public_url validation', () => {
  test('https for any host; the origin is stored, a trailing "/" dropped, the default port too', () => {
    accepts('https://desk.example.com', 'https://desk.example.com');
    accepts('https://desk.example.com/', 'https://desk.example.com');
    accepts('HTTPS://Desk.Example.COM:443/', 'https://desk.example.com');
    accepts('https://desk.example.com:8443', 'https://desk.example.com:8443');
    accepts('https://203.0.113.7', 'https://203.0.113.7');
    accepts('https://[2001:db8::1]:8443/', 'https://[2001:db8::1]:8443');
  });

  test('http only for loopback, RFC 1918, link-local, CGNAT, ULA and .local hosts', () => {
    const local = [
      ['http://127.0.0.1:7070', 'loopback'],
      ['http://localhost:7070', 'loopback name'],
      ['http://desk.localhost', 'loopback name'],
      ['http://[::1]:7070', 'IPv6 loopback'],
      ['http://10.1.2.3', 'RFC 1918 10/8'],
      ['http://172.16.0.1', 'RFC 1918 172.16/12'],
      ['http://172.31.255.254', 'RFC 1918 172.16/12, top'],
      ['http://192.168.1.10:8080', 'RFC 1918 192.168/16'],
      ['http://169.254.10.20', 'link-local'],
      ['http://[fe80::1]', 'IPv6 link-local'],
      ['http://100.64.0.1', 'CGNAT 100.64/10'],
      ['http://100.127.255.254', 'CGNAT 100.64/10, top'],
      ['http://[fd12:3456::1]', 'ULA fc00::/7'],
      ['http://[::ffff:192.168.1.10]', 'IPv4-mapped private'],
      ['http://desk.local', '.local (mDNS)'],
      ['http://Desk.LOCAL.:8080', '.local, absolute'],
    ];
    for (const [url, why] of local) assert.ok(checkPublicUrl(url!).value, `${url} (${why}) should be accepted`);
    const publicHttp = [
      'http://desk.example.com',
      'http://203.0.113.7',
      'http://172.32.0.1', // just past 172.16/12
      'http://100.128.0.1', // just past 100.64/10
      'http://11.0.0.1',
      'http://[2001:db8::1]',
      'http://desk.local.example.com', // .local only as the last label
      'http://desk', // a bare name may resolve anywhere
    ];
    for (const url of publicHttp) refuses(url, /https/);
    assert.equal(isLocalUrlHost('[fd00::1]'), true);
    assert.equal(isLocalUrlHost('example.com'), false);
  });

  test('no path, query, fragment or userinfo; only http(s); no wildcard address', () => {
    for (const url of [
      'https://desk.example.com/app',
      'https://desk.example.com//',
      'https://desk.example.com/.',
      'https://desk.example.com\\',
      'https://desk.example.com/?a=1',
      'https://desk.example.com?',
      'https://desk.example.com#x',
      'https://desk.example.com/#',
    ]) {
      refuses(url, /path, query or fragment/);
    }
    refuses('https://user:pass@desk.example.com', /credentials/);
    refuses('https://user@desk.example.com', /credentials/);
    refuses('ftp://desk.example.com', /http/);
    refuses('desk.example.com', /http/);
    refuses('https://', /valid URL/);
    refuses('http://0.0.0.0:7070', /wildcard/);
    refuses('https://[::]', /wildcard/);
  });

  test('problems never echo the URL (it may carry credentials)', () => {
    const r = checkPublicUrl('https://alice:s3cret@desk.example.com/x');
    assert.ok(r.problem);
    assert.doesNotMatch(r.problem, /s3cret/);
  });
});

describe('detectPublicUrl', () => {
  const proxied = { class: 'trusted-proxy' } as const;
  test('from X-Forwarded-Proto and X-Forwarded-Host (or Host), validated like public_url', () => {
    assert.equal(detectPublicUrl({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'Desk.Example.com' }, proxied), 'https://desk.example.com');
    assert.equal(detectPublicUrl({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'desk.example.com:443' }, proxied), 'https://desk.example.com');
    assert.equal(detectPublicUrl({ 'x-forwarded-proto': 'https', host: 'desk.example.com:8443' }, proxied), 'https://desk.example.com:8443');
    assert.equal(detectPublicUrl({ 'x-forwarded-proto': 'http', 'x-forwarded-host': '192.168.1.5:8080' }, proxied), 'http://192.168.1.5:8080');
  });

  test('nothing from anyone but a trusted proxy, nor anything a public_url could not be', () => {
    const h = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'desk.example.com' };
    for (const cls of ['local', 'direct', 'tunnel', 'tailscale', 'unattributed', 'cli'] as const) {
      assert.equal(detectPublicUrl(h, { class: cls }), undefined, cls);
    }
    const bad: Record<string, string>[] = [
      { 'x-forwarded-host': 'desk.example.com' }, // no proto
      { 'x-forwarded-proto': 'ftp', 'x-forwarded-host': 'desk.example.com' },
      { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'desk.example.com' }, // http on a public name
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.example, b.example' }, // a chain: ambiguous
      { 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'desk.example.com' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example/path' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'user@desk.example.com' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': '' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': '0.0.0.0' },
    ];
    for (const headers of bad) assert.equal(detectPublicUrl(headers, proxied), undefined, JSON.stringify(headers));
  });
});

function app(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url }));
  });
}

describe('a gateway with public_url and a trusted proxy', () => {
  const PROXY = '127.0.0.2';
  const TOKEN = `ph_${'p'.repeat(43)}`;
  const dir = tempDir();
  let gw: Gateway;
  let server: ReturnType<typeof createServer>;
  let port = 0;

  before(async () => {
    const { config } = loadConfig({
      home: dir.dir,
      env: {},
      flags: { publicUrl: 'https://desk.example.com/', trustedProxies: [PROXY] },
    });
    gw = createGateway({ stateDir: dir.dir, app, config, token: TOKEN });
    server = createServer(gw.handleRequest);
    port = await listen(server);
  });

  after(async () => {
    await closeServer(server);
    await gw.close();
    dir.cleanup();
  });

  const bearer = { authorization: `Bearer ${TOKEN}` };

  test("the public URL's host joins the Host allowlist; other names are still refused", async () => {
    const ok = await send(port, '/', { headers: { ...bearer, host: 'desk.example.com' }, localAddress: PROXY });
    assert.equal(ok.status, 200, ok.text);
    const other = await send(port, '/', { headers: { ...bearer, host: 'evil.example.com' }, localAddress: PROXY });
    assert.equal(other.code, 'HOST_NOT_ALLOWED');
  });

  test('its origin joins the Origin allowlist: CORS preflight and unsafe requests from it pass', async () => {
    const preflight = (origin: string) =>
      send(port, '/api', {
        method: 'OPTIONS',
        headers: { host: 'desk.example.com', origin, 'access-control-request-method': 'POST' },
        localAddress: PROXY,
      });
    const allowed = await preflight('https://desk.example.com');
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://desk.example.com');
    assert.equal((await preflight('http://desk.example.com')).code, 'ORIGIN_NOT_ALLOWED', 'another scheme is another origin');
    assert.equal((await preflight('https://evil.example.com')).code, 'ORIGIN_NOT_ALLOWED');
  });

  test('detectedPublicUrl: remembered from authenticated requests through the trusted proxy only', async () => {
    assert.equal(gw.detectedPublicUrl, undefined);
    const forwarded = { host: 'desk.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' };
    // Anonymous (public endpoint) through the proxy: not believed enough to suggest anything.
    await send(port, '/_porthole/ping', { headers: { ...forwarded, 'x-forwarded-host': 'desk.example.com:8443' }, localAddress: PROXY });
    assert.equal(gw.detectedPublicUrl, undefined);
    // The same headers from a peer that is not a trusted proxy: ignored.
    const direct = await send(port, '/', { headers: { ...bearer, ...forwarded, 'x-forwarded-host': 'desk.example.com:9443' }, localAddress: '127.0.0.3' });
    assert.equal(direct.status, 200, direct.text);
    assert.equal(gw.detectedPublicUrl, undefined);
    // Authenticated, through the proxy: detected.
    const r = await send(port, '/', { headers: { ...bearer, ...forwarded, 'x-forwarded-host': 'desk.example.com:8443' }, localAddress: PROXY });
    assert.equal(r.status, 200, r.text);
    assert.equal(gw.detectedPublicUrl, 'https://desk.example.com:8443');
    // An invalid report (http on a public name) keeps the last good one.
    await send(port, '/', { headers: { ...bearer, ...forwarded, 'x-forwarded-proto': 'http' }, localAddress: PROXY });
    assert.equal(gw.detectedPublicUrl, 'https://desk.example.com:8443');
  });
});
