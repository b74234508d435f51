// The SDK's pairing: pair() makes an Ed25519 key pair, exchanges a code from `porthole
// pair` (over a pinned TLS connection) and connect({ device }) then signs each control-plane
// challenge; revoking the device on the desk closes it (4003) and refuses it afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ControlClient, connect, pair } from '../../src/client/index.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';

describe('SDK pairing with a device key', () => {
  let app: EchoApp;
  let served: Served;
  const home = tempHome();
  let url = '';
  let pin = '';
  const env = () => ({ PORTHOLE_HOME: home.home });

  before(async () => {
    app = await startEchoApp();
    served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--tls', 'self-signed'], env());
    url = served.event.url as string;
    pin = (served.event['tls'] as { pin: string }).pin;
  });
  after(async () => {
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  async function newCode(...args: string[]): Promise<{ code: string; shortCode: string }> {
    const r = await runCli(['pair', '--json', ...args], env());
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { code: string; shortCode: string };
  }

  test('a wrong pin fails before the code is sent; the right pin pairs with that same code', async () => {
    const { code } = await newCode('--scope', 'read');
    const wrong = `sha256/${Buffer.alloc(32, 7).toString('base64')}`;
    await assert.rejects(pair({ url, code, name: 'script', pin: wrong }), { code: 'TLS_PIN_MISMATCH' });
    const paired = await pair({ url, code, name: 'script', pin });
    assert.equal(paired.device.scope, 'read');
    assert.match(paired.token, /^phd_[A-Za-z0-9_-]{43}$/);
    assert.match(paired.privateKey, /BEGIN PRIVATE KEY/);
    assert.equal(paired.pins.tls?.spki, pin, 'the pairing answer carries the pin serve printed');
  });

  test('connect({ device }) signs the challenge; revoking the device closes it with 4003 and refuses it after', async () => {
    const { shortCode } = await newCode('--scope', 'admin');
    const paired = await pair({ url, shortCode, name: 'laptop cli', pin });
    const device = { id: paired.device.id, privateKey: paired.privateKey };
    const client: ControlClient = await connect({ url, pin, device, reconnect: false });
    try {
      assert.equal(client.hello.scope, 'admin');
      assert.deepEqual(await client.request('health'), { status: 'ok' });
      const revoked = await runCli(['devices', 'revoke', paired.device.id], env());
      assert.equal(revoked.code, 0, revoked.stderr);
      const why = await client.closed;
      assert.equal(why?.code, 'AUTH_REVOKED');
      assert.equal(why?.closeCode, 4003);
    } finally {
      await client.close();
    }
    await assert.rejects(connect({ url, pin, device, reconnect: false }), (e: { code?: string }) => e.code === 'AUTH_REVOKED' || e.code === 'AUTH_INVALID');
  });
});
