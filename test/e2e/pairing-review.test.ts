// Review D of pairing: revoking a device whose revocation cannot be saved (devices.json not
// writable) still ends everything the device has open at once, and says the revocation was
// not saved — it fails closed now, and the operator knows it will not survive a restart.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { nextChunk, openStream, send } from '../helpers/http.js';

const TOKEN = `ph_${'r'.repeat(43)}`;

describe('pairing review: revocation when devices.json cannot be written', () => {
  let app: EchoApp;
  let served: Served;
  const home = tempHome();
  const env = () => ({ PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN });

  before(async () => {
    app = await startEchoApp();
    served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--no-loopback-exempt'], env());
  });
  after(async () => {
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  test('open streams close and the answer is an error, not "revoked"', async () => {
    const port = served.event.port;
    const p = await runCli(['pair', '--json'], env());
    assert.equal(p.code, 0, p.stderr);
    const { code } = JSON.parse(p.stdout) as { code: string };
    const r = await send(port, '/_porthole/api/pair/exchange', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code, name: 'doomed', kind: 'sdk' }),
    });
    assert.equal(r.status, 201, r.text);
    const { device, token } = r.json as { device: { id: string }; token: string };

    const connected = app.nextSse();
    const stream = await openStream(port, '/sse', { authorization: `Bearer ${token}`, accept: 'text/event-stream' });
    const upstream = await connected;
    const got = nextChunk(stream.res);
    upstream.write('data: one\n\n');
    assert.match(await got, /data: one/);

    // devices.json becomes a non-empty directory: the atomic rename over it fails, even for root.
    const file = join(home.home, 'devices.json');
    rmSync(file);
    mkdirSync(file);
    writeFileSync(join(file, 'keep'), '');
    try {
      const revoke = await runCli(['devices', 'revoke', device.id, '--json'], env());
      assert.notEqual(revoke.code, 0, `a revocation that was not saved is not reported as done: ${revoke.stdout}`);
      assert.match(revoke.stderr, /not saved/i, revoke.stderr);
      const bound = (pr: Promise<unknown>, what: string) =>
        Promise.race([pr, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what} still open`)), 10_000))]);
      await bound(stream.closed, 'the SSE stream');
      assert.equal((await send(port, '/', { headers: { authorization: `Bearer ${token}` } })).status, 401);
    } finally {
      rmSync(file, { recursive: true, force: true });
    }
  });
});
