// auth.mode = "trusted-proxy" through a real gateway (createGateway + node:http on
// 127.0.0.1): the "proxy" connects from 127.0.0.2 (the only trusted address), an
// "attacker" from 127.0.0.3 sends the very same headers. Only the proxy's user header
// signs anyone in; porthole's own credentials are off; no client address fails closed.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { PortholeConfig } from '../../src/config/schema.js';
import { isPortholeError } from '../../src/errors.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { send } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';

const PROXY = '127.0.0.2';
const ATTACKER = '127.0.0.3';

function app(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
}

function configFor(home: string, edit: (c: PortholeConfig) => void = () => {}): PortholeConfig {
  const { config } = loadConfig({ home, env: {}, flags: { authMode: 'trusted-proxy', trustedProxies: [PROXY] } });
  edit(config);
  return config;
}

describe('trusted-proxy mode in the gateway', () => {
  const dir = tempDir();
  let gw: Gateway;
  let server: ReturnType<typeof createServer>;
  let port = 0;

  before(async () => {
    gw = createGateway({
      stateDir: dir.dir,
      app,
      config: configFor(dir.dir, (c) => {
        c.auth.trusted_proxy.required_headers = ['X-Forwarded-Email'];
        c.auth.trusted_proxy.allow_users = ['alice'];
        c.auth.public_paths = ['/hooks'];
      }),
    });
    server = createServer(gw.handleRequest);
    port = await listen(server);
  });

  after(async () => {
    await closeServer(server);
    await gw.close();
    dir.cleanup();
  });

  const signedIn = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-user': 'alice', 'x-forwarded-email': 'alice@example.com' };

  test('the proxy names the user: the app sees it in the signed identity header, not the raw one', async () => {
    const r = await send(port, '/page', { headers: signedIn, localAddress: PROXY });
    assert.equal(r.status, 200, r.text);
    const seen = (r.json as { headers: Record<string, string> }).headers;
    const id = gw.identityOf(seen['x-porthole-identity']);
    assert.ok(id, 'a valid signed identity');
    assert.equal(id.sub, 'alice');
    assert.equal(id.cred, 'trusted-proxy');
    assert.equal(id.ingress, 'trusted-proxy');
    assert.equal(seen['x-porthole-ingress'], 'trusted-proxy');
    assert.equal(seen['x-forwarded-user'], undefined, 'the user header itself is not forwarded');
    assert.equal(seen['x-forwarded-email'], 'alice@example.com', "the trusted proxy's other headers reach the app");
    // An in-process app gets the trusted proxy's chain as it came (a target also gets the hop appended).
    assert.equal(seen['x-forwarded-for'], '203.0.113.9');
  });

  test('the same headers from an untrusted peer authenticate no one', async () => {
    const r = await send(port, '/page', { headers: signedIn, localAddress: ATTACKER });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.code, 'AUTH_REQUIRED');
  });

  test('an untrusted peer cannot plant identity headers on a public path either', async () => {
    const r = await send(port, '/hooks/x', { headers: signedIn, localAddress: ATTACKER });
    assert.equal(r.status, 200, r.text);
    const seen = (r.json as { headers: Record<string, string> }).headers;
    assert.equal(seen['x-forwarded-user'], undefined);
    assert.equal(seen['x-forwarded-email'], undefined, 'required_headers are proxy-only');
    assert.equal(seen['x-forwarded-for'], undefined, 'its X-Forwarded-For claim is dropped');
    assert.equal(gw.identityOf(seen['x-porthole-identity'])?.sub, 'anonymous');
  });

  test('no usable client address from the proxy fails closed', async () => {
    for (const xff of [undefined, '', 'unknown', '203.0.113.9, junk']) {
      const headers: Record<string, string> = { 'x-forwarded-user': 'alice', 'x-forwarded-email': 'a@example.com' };
      if (xff !== undefined) headers['x-forwarded-for'] = xff;
      const r = await send(port, '/page', { headers, localAddress: PROXY });
      assert.equal(r.status, 400, `${xff}: ${r.text}`);
      assert.equal(r.code, 'CLIENT_ADDRESS_UNKNOWN', String(xff));
    }
  });

  test('user rules: allow_users, required headers, one header copy', async () => {
    const cases: [Record<string, string | string[]>, number, string][] = [
      [{ ...signedIn, 'x-forwarded-user': 'mallory' }, 403, 'USER_NOT_ALLOWED'],
      [{ 'x-forwarded-for': '203.0.113.9', 'x-forwarded-user': 'alice' }, 401, 'AUTH_REQUIRED'],
      [{ 'x-forwarded-for': '203.0.113.9', 'x-forwarded-email': 'a@example.com' }, 401, 'AUTH_REQUIRED'],
      [{ ...signedIn, 'x-forwarded-user': ['mallory', 'alice'] }, 403, 'USER_NOT_ALLOWED'],
    ];
    for (const [headers, status, code] of cases) {
      const r = await send(port, '/page', { headers, localAddress: PROXY });
      assert.equal(r.status, status, `${JSON.stringify(headers)}: ${r.text}`);
      assert.equal(r.code, code);
    }
  });

  test("porthole's own credentials are not accepted remotely, and never counted", async () => {
    const token = gw.revealToken();
    for (const [path, headers] of [
      ['/page', { authorization: `Bearer ${token}` }],
      [`/page?token=${token}`, {}],
      ['/page?code=phc_whatever', {}],
    ] as const) {
      for (const from of [PROXY, ATTACKER]) {
        const h = from === PROXY ? { ...signedIn, ...headers } : headers;
        const r = await send(port, path, { headers: h, localAddress: from });
        assert.equal(r.status, 401, `${path} from ${from}: ${r.text}`);
        assert.equal(r.code, 'CREDENTIAL_NOT_ACCEPTED');
      }
    }
    // Ten refusals later, nobody is banned: nothing was a guess.
    const still = await send(port, '/page', { headers: signedIn, localAddress: PROXY });
    assert.equal(still.status, 200, still.text);
  });

  test('the SSO credential is ambient: an unsafe request from a foreign Origin is refused', async () => {
    const r = await send(port, '/page', { method: 'POST', headers: { ...signedIn, origin: 'https://evil.example' }, localAddress: PROXY });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.code, 'ORIGIN_NOT_ALLOWED');
  });

  test('one-time links are off', async () => {
    assert.throws(() => gw.issueCode(), (e) => isPortholeError(e, 'CREDENTIAL_NOT_ACCEPTED'));
    const r = await send(port, '/_porthole/api/codes', { method: 'POST', headers: signedIn, localAddress: PROXY });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.code, 'CREDENTIAL_NOT_ACCEPTED');
    assert.equal(gw.status().auth.mode, 'trusted-proxy');
  });
});

describe('trusted-proxy mode refuses to start unsafe', () => {
  test('without trusted proxies, or with a shared token; saying how to fix it', () => {
    const dir = tempDir();
    try {
      const base = configFor(dir.dir);
      const noProxies = { ...base, gateway: { ...base.gateway, trusted_proxies: [] } };
      assert.throws(
        () => createGateway({ stateDir: dir.dir, app, config: noProxies }),
        (e) => isPortholeError(e, 'CONFIG_INVALID') && /trusted_proxies/.test(e.message),
      );
      const token = `ph_${'a'.repeat(43)}`;
      const shared: [string, Parameters<typeof createGateway>[0]][] = [
        ['createGateway({ token })', { stateDir: dir.dir, app, config: base, token }],
        ['PORTHOLE_AUTH_TOKEN', { stateDir: dir.dir, app, config: base, env: { PORTHOLE_AUTH_TOKEN: token } }],
        ['--auth-token', { stateDir: dir.dir, app, config: base, tokenFlags: { authToken: token } }],
        ['--auth-token-file', { stateDir: dir.dir, app, config: base, tokenFlags: { authTokenFile: '/nonexistent' } }],
        ['[auth] token_file', { stateDir: dir.dir, app, config: { ...base, auth: { ...base.auth, token_file: '/nonexistent' } } }],
      ];
      for (const [what, options] of shared) {
        assert.throws(
          () => createGateway(options),
          (e) =>
            isPortholeError(e, 'CONFIG_INVALID') && e.message.includes(what) && /Remove it, or use auth.mode = "token"/.test(e.message) && !e.message.includes(token),
          what,
        );
      }
    } finally {
      dir.cleanup();
    }
  });
});
