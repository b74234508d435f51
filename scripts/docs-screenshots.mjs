// `npm run docs:screenshots`: refreshes docs/screenshots/<tab>.png, one per console tab, from
// a throwaway gateway (temporary PORTHOLE_HOME, random token, loopback) in Debian's Chromium.
// Needs `npm run build` first and /usr/bin/chromium (or CHROMIUM=path). Not part of the tests.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'docs/screenshots');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const TABS = [
  ['overview', 'Overview'],
  ['tailscale', 'Tailscale'],
  ['public', 'Public internet'],
  ['proxy', 'Reverse proxy'],
  ['ssh', 'SSH tunnel'],
  ['lan', 'Local network'],
  ['devices', 'Devices'],
  ['security', 'Security'],
];

const app = createServer((_req, res) => res.end('the app\n'));
await new Promise((r) => app.listen(0, '127.0.0.1', r));
const home = mkdtempSync(join(tmpdir(), 'porthole-shots-'));
const token = `ph_${randomBytes(32).toString('base64url')}`;
const env = { ...process.env, PORTHOLE_HOME: home, PORTHOLE_AUTH_TOKEN: token, PORTHOLE_SECRET_STORE: 'file' };
const gw = spawn(process.execPath, [join(root, 'bin/porthole.js'), 'serve', '--target', String(app.address().port), '--port', '0', '--json'], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let browser;
try {
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway did not start within 20 s')), 20_000);
    gw.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
    createInterface({ input: gw.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line).url);
    });
  });
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 }, deviceScaleFactor: 1, colorScheme: 'light' });
  await page.goto(`${url}/_porthole/ui/?token=${token}#/settings/remote-access`);
  await page.getByTestId('live-state').getByText('Live').waitFor();
  mkdirSync(outDir, { recursive: true });
  for (const [id, label] of TABS) {
    await page.goto(`${url}/_porthole/ui/#/settings/remote-access/${id}`);
    await page.getByRole('heading', { name: label, level: 2 }).waitFor();
    if (id === 'devices') {
      // The QR belongs to this throwaway desk: it is dead once the script ends.
      await page.getByTestId('pair-create').click();
      await page.getByTestId('pair-qr').waitFor();
    }
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: join(outDir, `${id}.png`), fullPage: true });
    process.stdout.write(`docs/screenshots/${id}.png\n`);
  }
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true });
  await phone.goto(`${url}/_porthole/ui/`);
  await phone.getByLabel('Pairing code').waitFor();
  await phone.screenshot({ path: join(outDir, 'sign-in-phone.png') });
  process.stdout.write('docs/screenshots/sign-in-phone.png\n');
} finally {
  await browser?.close();
  gw.kill('SIGTERM');
  await new Promise((r) => (gw.exitCode !== null ? r() : gw.once('exit', r)));
  app.close();
  rmSync(home, { recursive: true, force: true });
}
