// Review D of the web console, in Debian's Chromium: the pairing code of a QR link leaves the
// address bar (and so the history) as soon as the page reads it, not only after the exchange;
// the pairing still works from memory; and a device name made of markup is shown as text.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnless } from '../helpers/peers.js';

const CHROMIUM = '/usr/bin/chromium';
// As console.test.ts (not imported: that would run its suite too).
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DIST_INDEX = new URL('../../dist/console/index.html', import.meta.url);
const skip = skipUnless('chromium', existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`);

describe('web console review (Chromium)', { skip }, () => {
  let app: EchoApp;
  let served: Served;
  let browser: Browser;
  let base = '';
  let token = '';
  const home = tempHome();

  before(async () => {
    assert.ok(existsSync(DIST_INDEX), 'dist/console is built (npm run build)');
    app = await startEchoApp();
    served = await startCli(['serve', '--target', app.url, '--port', '0', '--json'], { PORTHOLE_HOME: home.home });
    const shown = await runCli(['token', 'show'], { PORTHOLE_HOME: home.home });
    assert.equal(shown.code, 0, shown.stderr);
    token = shown.stdout.trim();
    base = served.event.url;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  });
  after(async () => {
    await browser?.close();
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  async function pairCode(body: Record<string, unknown> = {}): Promise<{ code: string; shortCode: string }> {
    const res = await fetch(`${base}/_porthole/api/pair`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 201);
    return (await res.json()) as { code: string; shortCode: string };
  }

  test('a pairing link: the code leaves the address bar on load, before any click, and still pairs', async () => {
    const { code } = await pairCode();
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(`${base}/_porthole/ui/#/pair?code=${code}`);
      await page.getByTestId('pair-submit').waitFor();
      // Nobody has clicked yet: the code must already be out of the URL (and the history entry).
      assert.ok(!page.url().includes('phc_'), `the code is still in the address bar: ${page.url()}`);
      assert.equal(await page.evaluate(() => (globalThis as unknown as { location: { hash: string } }).location.hash), '#/pair');
      await page.getByTestId('pair-submit').click();
      await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
      assert.ok(!page.url().includes('phc_'));
    } finally {
      await ctx.close();
    }
  });

  test('a device name made of markup is shown as text, never run', async () => {
    const { shortCode } = await pairCode();
    const evil = '<img src=x onerror="alert(1)">';
    const ex = await fetch(`${base}/_porthole/api/pair/exchange`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ shortCode, name: evil, kind: 'sdk' }),
    });
    assert.equal(ex.status, 201);
    const ctx = await browser.newContext();
    const dialogs: string[] = [];
    try {
      const page = await ctx.newPage();
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(`${base}/_porthole/ui/`);
      await page.getByLabel('Token', { exact: true }).fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Overview', level: 2 }).waitFor();
      await page.getByRole('link', { name: 'Devices', exact: true }).click();
      await page.getByRole('row').filter({ hasText: evil }).waitFor();
      assert.equal(await page.locator('table img').count(), 0, 'no element made from the name');
      assert.deepEqual(dialogs, []);
    } finally {
      await ctx.close();
    }
  });
});
