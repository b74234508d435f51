// The console's Tailscale tab and its live updates, in Chromium, with the Tailscale emulator
// on PATH: Serve switched on from the tab; then switched off from the CLI on the desk, and
// the Overview open in the browser follows through the control plane (exposure.changed) —
// no reload, no polling.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnless } from '../helpers/peers.js';
import { createEmulator, type Emulator } from '../tailscale/emulator.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = skipUnless('chromium', existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`);

describe('web console: Tailscale tab and live overview (Chromium, Tailscale emulator)', { skip }, () => {
  let emu: Emulator;
  let app: EchoApp;
  let served: Served;
  let browser: Browser;
  let token: string;
  const home = tempHome();

  before(async () => {
    emu = createEmulator();
    app = await startEchoApp();
    served = await startCli(['serve', '--target', app.url, '--port', '0', '--json'], { PORTHOLE_HOME: home.home, ...emu.env });
    const shown = await runCli(['token', 'show'], { PORTHOLE_HOME: home.home });
    assert.equal(shown.code, 0, shown.stderr);
    token = shown.stdout.trim();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 });
  });
  after(async () => {
    await browser?.close();
    await served?.stop();
    await app?.close();
    emu?.cleanup();
    home.cleanup();
  });

  test('Serve from the tab; Turn off from the CLI shows up live on the Overview', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(`${served.event.url}/_porthole/ui/?token=${token}#/settings/remote-access/tailscale`);
      await page.getByRole('heading', { name: 'Tailscale', level: 2 }).waitFor();
      await page.getByTestId('live-state').getByText('Live').waitFor();
      const facts = page.getByTestId('tailscale-facts');
      await facts.getByText('running').waitFor();
      await page.getByRole('button', { name: 'Serve on the tailnet' }).click();
      await facts.getByText('Serve (tailnet only)').waitFor({ timeout: 20_000 });
      const url = await page.getByLabel('Tailnet URL', { exact: true }).inputValue();
      assert.match(url, /^https:\/\/[a-z0-9.-]+\.ts\.net\/?$/);

      await page.getByRole('link', { name: 'Overview', exact: true }).click();
      const card = page.getByTestId('card-tailscale');
      await card.getByText('Working', { exact: true }).waitFor();
      // Switched off on the desk, over the Unix socket: the open page follows without a reload.
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      const reset = await runCli(['tailscale', 'reset'], { PORTHOLE_HOME: home.home, ...emu.env });
      assert.equal(reset.code, 0, reset.stderr);
      await card.getByText('Off', { exact: true }).waitFor({ timeout: 20_000 });
      assert.ok(
        requests.every((u) => !u.endsWith('/_porthole/ui/')),
        'the page was not reloaded',
      );
    } finally {
      await ctx.close();
    }
  });
});
