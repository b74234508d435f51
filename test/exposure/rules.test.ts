import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { assertNoConflicts, type ExposureFacts, findConflicts } from '../../src/exposure/rules.js';

const SAFE: ExposureFacts = {
  bindHost: '127.0.0.1',
  authMode: 'token',
  tailscale: 'off',
  tunnel: false,
  tunnelAutoStart: false,
};

const rules = (f: Partial<ExposureFacts>) => findConflicts({ ...SAFE, ...f }).map((c) => c.rule);

describe('exposure rules', () => {
  it('the default desk has no conflict, nor do the single exposures', () => {
    assert.deepEqual(rules({}), []);
    assert.deepEqual(rules({ bindHost: '0.0.0.0' }), []);
    assert.deepEqual(rules({ tunnel: true }), []);
    assert.deepEqual(rules({ tailscale: 'serve' }), []);
    assert.deepEqual(rules({ tailscale: 'funnel', authMode: 'password' }), []);
    assert.deepEqual(rules({ tailscale: 'serve', bindHost: '::1' }), []);
    assert.deepEqual(rules({ authMode: 'trusted-proxy' }), []);
  });

  it('only one public exposure: Funnel and the tunnel', () => {
    assert.deepEqual(rules({ tailscale: 'funnel', tunnel: true }), ['one-public-exposure']);
    assert.deepEqual(rules({ tailscale: 'serve', tunnel: true }), [], 'Serve is tailnet-only, not public');
  });

  it('Tailscale needs a loopback bind', () => {
    assert.deepEqual(rules({ tailscale: 'serve', bindHost: '0.0.0.0' }), ['tailscale-needs-loopback']);
    assert.deepEqual(rules({ tailscale: 'serve', bindHost: '100.64.0.1' }), ['tailscale-needs-loopback']);
    assert.deepEqual(rules({ tailscale: 'off', bindHost: '0.0.0.0' }), []);
  });

  it('Funnel needs a credential-based auth mode', () => {
    assert.deepEqual(rules({ tailscale: 'funnel', authMode: 'none' }), ['funnel-needs-credential']);
    assert.deepEqual(rules({ tailscale: 'funnel', authMode: 'trusted-proxy' }), ['funnel-needs-credential']);
    assert.deepEqual(rules({ tailscale: 'serve', authMode: 'none' }), []);
  });

  it('Tailscale exposure and tunnel.auto_start exclude each other', () => {
    assert.deepEqual(rules({ tailscale: 'serve', tunnelAutoStart: true }), ['tailscale-vs-tunnel-auto-start']);
    assert.deepEqual(rules({ tunnelAutoStart: true }), []);
  });

  it('no auth only on loopback, and never with the tunnel', () => {
    assert.deepEqual(rules({ authMode: 'none' }), []);
    assert.deepEqual(rules({ authMode: 'none', bindHost: '0.0.0.0' }), ['remote-bind-needs-auth']);
    assert.deepEqual(rules({ authMode: 'none', bindHost: '192.168.1.5' }), ['remote-bind-needs-auth']);
    assert.deepEqual(rules({ authMode: 'none', tunnel: true }), ['remote-bind-needs-auth']);
    assert.deepEqual(rules({ authMode: 'none', bindHost: 'localhost' }), []);
  });

  it('every broken rule is reported at once, each with a reason and a fix', () => {
    const all = findConflicts({ ...SAFE, tailscale: 'funnel', tunnel: true, authMode: 'none', bindHost: '0.0.0.0', tunnelAutoStart: true });
    assert.deepEqual(
      all.map((c) => c.rule).sort(),
      ['funnel-needs-credential', 'one-public-exposure', 'remote-bind-needs-auth', 'remote-bind-needs-auth', 'tailscale-needs-loopback', 'tailscale-vs-tunnel-auto-start'].sort(),
    );
    for (const c of all) {
      assert.ok(c.reason.length > 20 && c.fix.length > 10, JSON.stringify(c));
      assert.ok(c.methods.length > 0);
    }
    assert.throws(
      () => assertNoConflicts({ ...SAFE, tailscale: 'funnel', tunnel: true }),
      (e: unknown) => isPortholeError(e) && e.code === 'EXPOSURE_CONFLICT' && e.status === 409 && /Fix: /.test(e.message),
    );
    assert.doesNotThrow(() => assertNoConflicts(SAFE));
  });
});
