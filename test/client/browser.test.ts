// The SDK's browser entry (`porthole/client` under the "browser" condition, dist/client/
// browser.js) in a real browser: Debian's Chromium, driven headless by playwright-core. A
// library gateway on loopback serves a page and the SDK's ES modules (its app); the page
// signs in with a one-time code (the console's session cookie), connects with no token,
// calls an app method, receives a pushed event, and also proves a token by HMAC (WebCrypto)
// from a fresh, cookie-less context. Needs the build (`npx tsc -p tsconfig.build.json`).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { type Gateway, createGateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { skipUnless } from '../helpers/peers.js';
import { tempDir } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../..', import.meta.url).pathname;
const TOKEN = `ph_${'b'.repeat(21)}${'C'.repeat(22)}`;

function problem(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not installed (Debian: chromium)`;
  if (!existsSync(join(ROOT, 'dist/client/browser.js'))) return 'dist/ not built (npx tsc -p tsconfig.build.json)';
  return undefined;
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>porthole sdk</title><p>sdk test page</p>';

/** The app behind the gateway: the page, and the SDK's compiled modules (dist/client, dist/control only). */
function app(req: { url?: string }, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const m = /^\/sdk\/((?:client|control)\/[a-z-]+\.js)$/.exec(path);
  if (m) {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
    res.end(readFileSync(join(ROOT, 'dist', m[1]!)));
    return;
  }
  res.writeHead(path === '/' ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
  res.end(PAGE);
}

describe('browser SDK in Chromium', { skip: skipUnless('chromium', problem()) }, () => {
  let gateway: Gateway;
  let listening: Listening;
  let browser: Browser;
  const tmp = tempDir('porthole-browser-');

  before(async () => {
    gateway = createGateway({ stateDir: tmp.dir, app, token: TOKEN });
    gateway.control.method('echo', async (params) => ({ echoed: params }));
    gateway.control.method('whoami', (_params, ctx) => ({ cred: ctx.cred, scope: ctx.scope }), { scope: 'read' });
    gateway.control.event('test.ping');
    listening = await listenGateway(gateway, { host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30_000,
    });
  });
  after(async () => {
    await browser?.close();
    await gateway?.close();
    await listening?.close();
    tmp.cleanup();
  });

  it('with the session cookie: connects without a token, calls a method, receives an event', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const { code } = gateway.issueCode();
      await page.goto(`${listening.url}/?code=${code}`);
      const cookies = await context.cookies();
      assert.ok(cookies.some((c) => c.httpOnly), 'the one-time code left an HttpOnly session cookie');
      const hello = await page.evaluate(async () => {
        const sdk = await import('/sdk/client/browser.js' as string);
        const client = await sdk.connect(); // the page's origin; no token: the session cookie
        const w = globalThis as unknown as { client: unknown; events: unknown[] };
        w.client = client;
        w.events = [];
        client.on('test.ping', (p: unknown) => w.events.push(p));
        return { result: await client.request('echo', { a: 1, s: 'é' }), who: await client.request('whoami'), state: client.state, methods: client.hello.methods };
      });
      assert.deepEqual(hello.who, { cred: 'session', scope: 'admin' });
      assert.deepEqual(hello.result, { echoed: { a: 1, s: 'é' } });
      assert.equal(hello.state, 'open');
      assert.ok((hello.methods as string[]).includes('echo'));
      // Publish once the page listens; it arrives in the page.
      assert.equal(gateway.control.publish('test.ping', { n: 42 }), 1, 'one session received it');
      await page.waitForFunction(() => (globalThis as unknown as { events: unknown[] }).events.length > 0, undefined, { timeout: 10_000 });
      const events = await page.evaluate(() => (globalThis as unknown as { events: unknown[] }).events);
      assert.deepEqual(events, [{ n: 42 }]);
      await page.evaluate(() => (globalThis as unknown as { client: { close(): Promise<void> } }).client.close());
    } finally {
      await context.close();
    }
  });

  it('without a cookie: no token is AUTH_REQUIRED; a token is proven by HMAC (WebCrypto) and works', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${listening.url}/`); // same-host loopback: the page loads, but /_porthole/ws has no exemption
      const out = await page.evaluate(async (token: string) => {
        const sdk = await import('/sdk/client/browser.js' as string);
        let refused = '';
        try {
          await sdk.connect({ reconnect: false });
        } catch (err) {
          refused = (err as { code: string }).code;
        }
        const client = await sdk.connect({ token });
        const health = await client.request('health');
        const who = await client.request('whoami');
        await client.close();
        return { refused, health, who, secure: (globalThis as unknown as { isSecureContext: boolean }).isSecureContext };
      }, TOKEN);
      assert.deepEqual(out.who, { cred: 'hmac', scope: 'admin' }, 'the token itself never crossed the wire');
      assert.equal(out.refused, 'AUTH_REQUIRED');
      assert.deepEqual(out.health, { status: 'ok' });
      assert.equal(out.secure, true, 'http://127.0.0.1 is a secure context: WebCrypto HMAC, not the bare token');
    } finally {
      await context.close();
    }
  });
});
