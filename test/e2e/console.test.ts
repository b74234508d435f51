// The web console end to end, in Debian's Chromium driven by Playwright (playwright-core):
// `porthole serve` serves it at /_porthole/ui/; first load with ?token= (the URL is cleaned
// by the 303), sign-in by token without a URL, every tab walked, a second browser paired by
// the code read from the QR image the page draws, then revoked — and it loses access at once.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import jsqr from 'jsqr';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnless } from '../helpers/peers.js';

// jsqr is CommonJS with `exports.default`: Node's default import is module.exports.
const jsQR = jsqr.default;
const CHROMIUM = '/usr/bin/chromium';
// The token the gateway made and keeps in its store (rotatable, unlike PORTHOLE_AUTH_TOKEN's).
let TOKEN = '';
const DIST_INDEX = new URL('../../dist/console/index.html', import.meta.url);
const TABS = ['Overview', 'Tailscale', 'Public internet', 'Reverse proxy', 'SSH tunnel', 'Local network', 'Devices', 'Security'];

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const skip = skipUnless('chromium', existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`);

function rawGet(base: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Decodes the QR code the page drew on its canvas, from the canvas's own pixels. */
async function readQr(page: Page): Promise<string> {
  const canvas = page.getByTestId('pair-qr');
  await canvas.waitFor();
  const img = await canvas.evaluate((el) => {
    const c = el as unknown as { width: number; height: number; getContext(k: '2d'): { getImageData(x: number, y: number, w: number, h: number): { width: number; height: number; data: ArrayLike<number> } } };
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height);
    return { w: d.width, h: d.height, data: Array.from(d.data) };
  });
  const found = jsQR(Uint8ClampedArray.from(img.data), img.w, img.h);
  assert.ok(found, 'the QR code on the page decodes');
  return found.data;
}

describe('web console (Chromium)', { skip }, () => {
  let app: EchoApp;
  let served: Served;
  let browser: Browser;
  let base: string;
  const home = tempHome();
  const cspErrors: string[] = [];

  async function newPage(ctx?: BrowserContext): Promise<{ ctx: BrowserContext; page: Page }> {
    const c = ctx ?? (await browser.newContext({ viewport: { width: 1100, height: 900 } }));
    const page = await c.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    page.on('dialog', (d) => void d.accept());
    return { ctx: c, page };
  }

  before(async () => {
    assert.ok(existsSync(DIST_INDEX), 'dist/console is built (npm run build)');
    app = await startEchoApp();
    served = await startCli(['serve', '--target', app.url, '--port', '0', '--json'], { PORTHOLE_HOME: home.home });
    const shown = await runCli(['token', 'show'], { PORTHOLE_HOME: home.home });
    assert.equal(shown.code, 0, shown.stderr);
    TOKEN = shown.stdout.trim();
    assert.match(TOKEN, /^ph_/);
    base = served.event.url;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  });
  after(async () => {
    await browser?.close();
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  test('static files: public, strict CSP, index no-store, hashed assets immutable, nothing else', async () => {
    const index = await rawGet(base, '/_porthole/ui/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['cache-control'], 'no-store');
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(index.headers['x-frame-options'], 'DENY');
    assert.doesNotMatch(index.body, /<script>|<style|\son[a-z]+=/i, 'no inline script or style');
    const js = /src="assets\/([^"]+\.js)"/.exec(index.body)?.[1];
    assert.ok(js, 'index.html names the hashed bundle');
    const asset = await rawGet(base, `/_porthole/ui/assets/${js}`);
    assert.equal(asset.status, 200);
    assert.match(String(asset.headers['content-type']), /^text\/javascript/);
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.ok(!asset.body.includes('https://cdn'), 'no CDN');
    const bare = await rawGet(base, '/_porthole/ui');
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.location, '/_porthole/ui/');
    for (const p of ['/_porthole/ui/assets/..%2f..%2f..%2fpackage.json', '/_porthole/ui/../package.json', '/_porthole/ui/nope.js']) {
      assert.equal((await rawGet(base, p)).status, 404, p);
    }
    // The data is not public: the API still needs a credential.
    assert.equal((await rawGet(base, '/_porthole/api/session')).status, 401);
  });

  test('without a session the console asks for a token or a pairing code; the token signs in without a URL', async () => {
    const { ctx, page } = await newPage();
    try {
      await page.goto(`${base}/_porthole/ui/`);
      await page.getByLabel('Pairing code').waitFor();
      await page.getByLabel('Token', { exact: true }).fill(TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
      assert.ok(!page.url().includes(TOKEN));
      assert.match(page.url(), /\/_porthole\/ui\/#\/settings\/remote-access$/);
      // A wrong token is refused with the server's code.
      const other = await newPage();
      await other.page.goto(`${base}/_porthole/ui/`);
      await other.page.getByLabel('Token', { exact: true }).fill(`ph_${'x'.repeat(43)}`);
      await other.page.getByRole('button', { name: 'Sign in' }).click();
      await other.page.getByText('[AUTH_INVALID]').waitFor();
      await other.ctx.close();
    } finally {
      await ctx.close();
    }
  });

  test('?token= first load, every tab, pair a second browser from the QR, revoke it', async () => {
    const { ctx, page } = await newPage();
    let phone: { ctx: BrowserContext; page: Page } | undefined;
    try {
      await page.goto(`${base}/_porthole/ui/?token=${TOKEN}#/settings/remote-access`);
      await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
      assert.ok(!page.url().includes('token='), `the token is gone from the URL: ${page.url()}`);
      assert.equal(new URL(page.url()).search, '');
      await page.getByTestId('live-state').getByText('Live').waitFor();

      // Every tab, by its link; each shows its heading and its own content.
      await page.getByTestId('card-lan').waitFor();
      for (const label of TABS) {
        await page.getByRole('navigation', { name: 'Remote access sections' }).getByRole('link', { name: label, exact: true }).click();
        await page.getByRole('heading', { name: label, level: 2 }).waitFor();
        const current = page.locator('nav.tabs a[aria-current="page"]');
        assert.equal(await current.textContent(), label);
      }
      // Cards on the overview jump to their tab.
      await page.getByRole('link', { name: 'Overview', exact: true }).click();
      await page.getByTestId('card-ssh').click();
      await page.getByRole('heading', { name: 'SSH tunnel', level: 2 }).waitFor();
      assert.match(page.url(), /#\/settings\/remote-access\/ssh$/);
      const sshCommand = await page.getByTestId('ssh-command').inputValue();
      assert.match(sshCommand, /^ssh .*-L/);

      // Pair: the QR on the page carries the pairing link; a second browser uses its code.
      await page.getByRole('link', { name: 'Devices', exact: true }).click();
      await page.getByTestId('pair-create').click();
      const link = await readQr(page);
      const m = /\/_porthole\/ui\/#\/pair\?code=(phc_[A-Za-z0-9_-]{43})$/.exec(link);
      assert.ok(m, `the QR holds a pairing link: ${link}`);
      assert.ok(!link.includes(TOKEN));
      assert.equal(await page.getByTestId('pair-link').inputValue(), link);
      assert.match((await page.getByTestId('pair-short-code').textContent()) ?? '', /^[0-9A-Z]{5}-[0-9A-Z]{5}$/);

      phone = await newPage(await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }));
      // The link's host is the desk's best remote URL; in this test the gateway is on loopback.
      await phone.page.goto(`${base}/_porthole/ui/#/pair?code=${m[1]}`);
      await phone.page.getByLabel('Name for this device').fill('Test phone');
      await phone.page.getByTestId('pair-submit').click();
      await phone.page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
      assert.ok(!phone.page.url().includes('phc_'), 'the code left the address bar');
      await phone.page.getByTestId('live-state').getByText('Live').waitFor();
      // Usable on a phone-sized screen: nothing wider than the viewport.
      const overflow = await phone.page.evaluate(() => { const g = globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number }; return g.document.documentElement.scrollWidth - g.innerWidth; });
      assert.ok(overflow <= 0, `no horizontal scrolling on a phone (${overflow}px too wide)`);

      // The desk's console sees the new device at once (live event), with a notice.
      await page.getByText('New device paired: “Test phone”').waitFor();
      assert.equal(await page.getByTestId('pair-panel').count(), 0, 'the QR closes once the code is used');
      const row = page.getByRole('row').filter({ hasText: 'Test phone' });
      await row.waitFor();

      // Revoke: the phone loses access at once (its control connection closes, its API calls fail).
      await row.getByRole('button', { name: 'Revoke Test phone' }).click();
      await phone.page.getByText('Access ended').waitFor();
      const after = await phone.page.evaluate(async () => (await fetch('/_porthole/api/session', { credentials: 'same-origin' })).status);
      assert.equal(after, 401);
      await row.waitFor({ state: 'detached' }).catch(async () => {
        // A revoked device may stay listed (as revoked) depending on the store; it must not be active.
        assert.doesNotMatch((await row.textContent()) ?? '', /active/);
      });
      assert.deepEqual(cspErrors, [], 'no Content-Security-Policy violations');
    } finally {
      await phone?.ctx.close();
      await ctx.close();
    }
  });

  test('a short code typed by hand pairs a read-only browser: it sees, but is offered no admin actions', async () => {
    const res = await fetch(`${base}/_porthole/api/pair`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'read' }),
    });
    assert.equal(res.status, 201);
    const { shortCode } = (await res.json()) as { shortCode: string };
    const { ctx, page } = await newPage();
    try {
      await page.goto(`${base}/_porthole/ui/`);
      await page.getByLabel('Pairing code').fill(shortCode.replace(/-/g, '').toLowerCase());
      await page.getByLabel('Name for this device').fill('Read-only laptop');
      await page.getByRole('button', { name: 'Pair this browser' }).click();
      await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
      await page.getByText('· read').waitFor();
      await page.getByTestId('card-lan').waitFor();
      await page.getByRole('link', { name: 'Devices', exact: true }).click();
      await page.getByText('Managing devices needs the admin scope').waitFor();
      assert.equal(await page.getByTestId('pair-create').count(), 0);
      await page.getByTestId('live-state').getByText('Live').waitFor();
    } finally {
      await ctx.close();
    }
  });

  test('tab actions: proxy snippets, test and save; secret shown masked; audit log; rotating the token ends its sessions', async () => {
    const { ctx, page } = await newPage(await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }));
    try {
      await page.goto(`${base}/_porthole/ui/?token=${TOKEN}#/settings/remote-access/proxy`);
      await page.getByRole('heading', { name: 'Reverse proxy', level: 2 }).waitFor();
      // Keyboard: the skip link is the first stop and moves focus to the content.
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } | null } }).document.activeElement?.textContent), 'Skip to content');

      const publicUrl = 'https://desk.console-test.example';
      await page.getByLabel('Public URL', { exact: true }).fill(publicUrl);
      await page.getByRole('button', { name: 'Show Caddy and nginx config' }).click();
      assert.match(await page.getByTestId('snippet-caddy').inputValue(), /desk\.console-test\.example/);
      assert.match(await page.getByTestId('snippet-nginx').inputValue(), /server_name desk\.console-test\.example/);
      // The test probes <url>/_porthole/ping: this name does not resolve, so it fails with a code.
      await page.getByRole('button', { name: 'Test', exact: true }).click();
      assert.match((await page.getByTestId('proxy-test-result').textContent({ timeout: 20_000 })) ?? '', /\[[A-Z_]+\]/);
      await page.getByRole('button', { name: 'Save as default' }).click();
      await page.getByText(`Saved: ${publicUrl}`).waitFor();

      // The registration secret goes in, and only its masked form comes back.
      const secret = `s3cret-${'k'.repeat(30)}`;
      await page.getByRole('link', { name: 'Public internet', exact: true }).click();
      await page.getByLabel('New registration secret').fill(secret);
      await page.getByRole('button', { name: 'Save secret' }).click();
      await page.getByTestId('secret-masked').getByText('store').waitFor();
      const masked = (await page.getByTestId('secret-masked').textContent()) ?? '';
      assert.ok(!masked.includes(secret), `only a masked form is shown: ${masked}`);
      assert.ok(!(await page.content()).includes(secret));

      await page.getByRole('link', { name: 'Local network', exact: true }).click();
      await page.getByTestId('lan-detail').getByText('loopback').waitFor();

      // Security: the audit log lists what happened (pairing and revocation above), then rotation.
      await page.getByRole('link', { name: 'Security', exact: true }).click();
      const audit = page.getByTestId('audit-log');
      await audit.locator('li').first().waitFor();
      assert.ok((await audit.locator('li').count()) > 0);
      await page.getByRole('button', { name: 'Rotate token' }).click();
      // This session came from the token: rotating it signs this browser out at once.
      await page.getByText('Access ended').waitFor();
      const status = await page.evaluate(async () => (await fetch('/_porthole/api/session', { credentials: 'same-origin' })).status);
      assert.equal(status, 401);
      assert.deepEqual(cspErrors, [], 'no Content-Security-Policy violations');
    } finally {
      await ctx.close();
    }
  });
});
