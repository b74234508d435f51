import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigFlags } from '../../src/config/types.js';
import { buildOverview, cachedTailscaleSummary, lanUrls, type OverviewInputs, PROXY_SEEN_WINDOW_MS, summarizeTailscale } from '../../src/exposure/overview.js';
import type { LanAddress } from '../../src/gateway/connect-url.js';

const LAN: LanAddress[] = [
  { address: '192.168.1.20', family: 4, interface: 'wlan0' },
  { address: 'fd00::20', family: 6, interface: 'wlan0' },
  { address: 'fe80::1', family: 6, interface: 'wlan0' },
];

function inputs(flags: ConfigFlags, extra: Partial<OverviewInputs> = {}): OverviewInputs {
  const { config } = loadConfig({ home: '/nonexistent-porthole-home', env: {}, flags });
  return { config, listening: { host: config.gateway.host, port: 7070 }, authMode: 'token', lan: LAN, ...extra };
}

describe('remote-access overview', () => {
  it('names all five methods; a default desk has only loopback and no conflicts', () => {
    const o = buildOverview(inputs({}));
    assert.deepEqual(Object.keys(o.methods).sort(), ['lan', 'reverseProxy', 'ssh', 'tailscale', 'tunnel']);
    assert.equal(o.methods.lan.on, false);
    assert.deepEqual(o.methods.lan.urls, []);
    assert.equal(o.methods.tunnel.health, 'off');
    assert.equal(o.methods.reverseProxy.on, false);
    assert.equal(o.methods.tailscale.on, false);
    assert.equal(o.methods.ssh.on, null, 'an SSH forward cannot be told from a local client');
    assert.match(o.methods.ssh.detail, /porthole ssh-tunnel --target/);
    assert.deepEqual(o.conflicts, []);
  });

  it('LAN URLs: wildcard binds list IPv4 (0.0.0.0) or both families (::); link-local is left out', () => {
    assert.deepEqual(lanUrls('0.0.0.0', 7070, LAN), ['http://192.168.1.20:7070']);
    assert.deepEqual(lanUrls('::', 7070, LAN), ['http://192.168.1.20:7070', 'http://[fd00::20]:7070']);
    assert.deepEqual(lanUrls('192.168.1.20', 8080, LAN), ['http://192.168.1.20:8080']);
    assert.deepEqual(lanUrls('127.0.0.1', 7070, LAN), []);
    const o = buildOverview(inputs({ host: '0.0.0.0' }));
    assert.equal(o.methods.lan.on, true);
    assert.equal(o.methods.lan.health, 'ok');
    assert.deepEqual(o.methods.lan.urls, ['http://192.168.1.20:7070']);
  });

  it('the tunnel: online with its URL, retrying as degraded with the reason', () => {
    const online = buildOverview(
      inputs({}, {
        tunnel: { enabled: true, relay: 'r.example:443', consent: true, state: { state: 'online', name: 'desk', url: 'https://desk.r.example', since: 1, mode: 'passthrough' } },
      }),
    );
    assert.equal(online.methods.tunnel.health, 'ok');
    assert.deepEqual(online.methods.tunnel.urls, ['https://desk.r.example']);
    const waiting = buildOverview(
      inputs({}, {
        tunnel: {
          enabled: true,
          relay: 'r.example:443',
          consent: true,
          state: { state: 'waiting', retryInMs: 1000, retryAt: Date.now() + 1000, attempt: 3, lastError: { code: 'TUNNEL_UNREACHABLE', message: 'connection refused' } },
        },
      }),
    );
    assert.equal(waiting.methods.tunnel.health, 'degraded');
    assert.match(waiting.methods.tunnel.detail, /TUNNEL_UNREACHABLE/);
  });

  it('the reverse proxy: healthy only while requests come through it; a detected URL is offered', () => {
    const now = 1_000_000_000;
    const base = { host: '127.0.0.1', publicUrl: 'https://desk.example.com', trustedProxies: '127.0.0.1' } as ConfigFlags;
    assert.equal(buildOverview(inputs(base, { now, proxySeenAt: now - 1000 })).methods.reverseProxy.health, 'ok');
    assert.equal(buildOverview(inputs(base, { now, proxySeenAt: now - PROXY_SEEN_WINDOW_MS - 1 })).methods.reverseProxy.health, 'unknown');
    const off = buildOverview(inputs({ trustedProxies: '127.0.0.1' }, { detectedPublicUrl: 'https://desk.example.com' }));
    assert.equal(off.methods.reverseProxy.on, false);
    assert.equal(off.methods.reverseProxy['detectedPublicUrl'], 'https://desk.example.com');
    assert.match(off.methods.reverseProxy.detail, /gateway\.public_url/);
  });

  it('conflicts follow the live state: Funnel on while the tunnel runs', () => {
    const o = buildOverview(
      inputs({}, {
        tailscale: { mode: 'funnel', url: 'https://desk.tail.ts.net', health: 'ok', detail: 'funnel on' },
        tunnel: { enabled: true, relay: 'r:443', consent: true, state: { state: 'connecting', attempt: 1 } },
      }),
    );
    assert.deepEqual(o.methods.tailscale.urls, ['https://desk.tail.ts.net']);
    assert.deepEqual(o.conflicts.map((c) => c.rule), ['one-public-exposure']);
  });
});

describe('Tailscale in the overview', () => {
  const reading = {
    mode: 'serve' as const,
    mapped: true,
    url: 'https://desk.tail1.ts.net/',
    dnsName: 'desk.tail1.ts.net',
    listener: 'unix' as const,
    allowUsers: ['me@example.com'],
    problems: [],
  };

  it('a mapped, problem-free Serve is ok; a problem or a missing mapping is degraded with the reason', () => {
    assert.equal(summarizeTailscale(reading).health, 'ok');
    const down = summarizeTailscale({ ...reading, problems: [{ code: 'TAILSCALE_NOT_RUNNING', message: 'Tailscale is stopped' }] });
    assert.equal(down.health, 'degraded');
    assert.match(down.detail, /TAILSCALE_NOT_RUNNING/);
    assert.equal(summarizeTailscale({ ...reading, mapped: false }).health, 'degraded');
  });

  it('readings are cached for the TTL, and a failed reading is reported, not thrown', async () => {
    let calls = 0;
    const summary = cachedTailscaleSummary(async () => {
      calls++;
      return reading;
    }, 60_000);
    await summary();
    await summary();
    assert.equal(calls, 1);
    const failing = cachedTailscaleSummary(() => Promise.reject(new Error('spawn EACCES')));
    const s = await failing();
    assert.equal(s.health, 'unknown');
    assert.match(s.detail, /EACCES/);
  });
});

describe('SSH in the overview', () => {
  it('gives the copy-ready forward, bound to loopback on both ends', () => {
    const o = buildOverview(inputs({}));
    const cmd = String(o.methods.ssh['command']);
    assert.match(cmd, /^ssh -N .*-L 127\.0\.0\.1:7070:127\.0\.0\.1:7070 -- you@/);
    assert.match(cmd, /ExitOnForwardFailure=yes/);
  });
});
