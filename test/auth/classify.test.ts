// Tests for src/auth/classify.ts: the ingress classes of DESIGN §2 and the brute-force keys
// of §3.2. The security promise under test: a request is `local` only from a loopback peer
// with no forwarding headers, a local Host and no cross-site signal.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { groupedKey } from '../../src/auth/rate-limit.js';
import { type ClassifyContext, classify, hasForwardingHeaders } from '../../src/auth/classify.js';
import { createCidrMatcher } from '../../src/auth/ip.js';

const noProxies = createCidrMatcher([]);

function ctx(overrides: Partial<ClassifyContext> = {}): ClassifyContext {
  return { peer: '127.0.0.1', hostIsLocal: true, crossSite: false, isTrustedProxy: noProxies, ...overrides };
}

test('local: loopback peer, no forwarding headers, local Host, not cross-site', () => {
  for (const peer of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
    const r = classify({ host: 'localhost:7070' }, ctx({ peer }));
    assert.equal(r.class, 'local', peer);
    assert.equal(r.client, r.peer);
  }
  assert.deepEqual(classify({}, ctx({ peer: '::ffff:127.0.0.1' })), {
    class: 'local',
    peer: '127.0.0.1',
    client: '127.0.0.1',
    key: '127.0.0.1',
  });
});

test('forwarding headers from a loopback peer make it unattributed, never local', () => {
  // Without a usable X-Forwarded-For entry the key is `fwd:<peer>`. Every one also counts
  // toward the unattributed group (the request chose its key).
  const g = (key: string) => groupedKey(key, 'unattributed');
  const cases: [string, IncomingHttpHeaders, string][] = [
    ['spoofed X-Forwarded-For', { 'x-forwarded-for': '127.0.0.1' }, g('xff:127.0.0.1')],
    ['X-Forwarded-For naming a visitor', { 'x-forwarded-for': '203.0.113.9' }, g('xff:203.0.113.9')],
    ['chain: rightmost entry keys', { 'x-forwarded-for': '10.1.1.1, 198.51.100.4' }, g('xff:198.51.100.4')],
    ['IPv6 entry keys by /64', { 'x-forwarded-for': '2001:db8:1:2:3:4:5:6' }, g('xff:2001:db8:1:2::/64')],
    ['mapped entry', { 'x-forwarded-for': '::ffff:203.0.113.9' }, g('xff:203.0.113.9')],
    ['empty X-Forwarded-For still counts', { 'x-forwarded-for': '' }, g('fwd:127.0.0.1')],
    ['junk X-Forwarded-For', { 'x-forwarded-for': 'unknown' }, g('fwd:127.0.0.1')],
    ['Forwarded (RFC 7239)', { forwarded: 'for=203.0.113.9' }, g('fwd:127.0.0.1')],
    ['X-Real-IP', { 'x-real-ip': '203.0.113.9' }, g('fwd:127.0.0.1')],
    ['X-Forwarded-Host alone', { 'x-forwarded-host': 'desk.example' }, g('fwd:127.0.0.1')],
    ['X-Forwarded-Proto alone', { 'x-forwarded-proto': 'https' }, g('fwd:127.0.0.1')],
  ];
  for (const [name, headers, key] of cases) {
    const r = classify(headers, ctx());
    assert.equal(r.class, 'unattributed', name);
    assert.equal(r.client, '127.0.0.1', `${name}: the claimed address is never the client`);
    assert.equal(r.key, key, name);
  }
});

test('hasForwardingHeaders', () => {
  const cases: [IncomingHttpHeaders, boolean][] = [
    [{}, false],
    [{ host: 'x', origin: 'http://x', 'user-agent': 'u' }, false],
    [{ 'x-forwarded-for': '1.2.3.4' }, true],
    [{ 'x-forwarded-port': '443' }, true],
    [{ 'x-forwarded-prefix': '/app' }, true],
    [{ forwarded: 'for=1.2.3.4' }, true],
    [{ 'x-real-ip': '1.2.3.4' }, true],
    [{ 'x-forwarded-for': '' }, true],
  ];
  for (const [headers, want] of cases) assert.equal(hasForwardingHeaders(headers), want, JSON.stringify(headers));
});

test('a cross-site loopback request is not local; its key is the Origin', () => {
  const r = classify({ origin: 'https://evil.example' }, ctx({ crossSite: true }));
  assert.deepEqual(r, { class: 'unattributed', peer: '127.0.0.1', client: '127.0.0.1', key: groupedKey('origin:https://evil.example', 'unattributed') });
  // Without an Origin (an <img>, a cross-site navigation) it is still not local.
  const bare = classify({ 'sec-fetch-site': 'cross-site' }, ctx({ crossSite: true }));
  assert.equal(bare.class, 'unattributed');
});

test('a loopback request with a non-local Host (L4 forwarder) is not local', () => {
  const r = classify({}, ctx({ hostIsLocal: false }));
  assert.equal(r.class, 'unattributed');
  assert.equal(r.client, '127.0.0.1');
});

test('loopback requests that are not local never share the local key', () => {
  const local = classify({}, ctx()).key;
  const others: [string, IncomingHttpHeaders, Partial<ClassifyContext>][] = [
    ['cross-site without Origin', { 'sec-fetch-site': 'cross-site' }, { crossSite: true }],
    ['non-local Host', {}, { hostIsLocal: false }],
    ['X-Real-IP only', { 'x-real-ip': '203.0.113.9' }, {}],
    ['Forwarded only', { forwarded: 'for=203.0.113.9' }, {}],
    ['X-Forwarded-Proto only', { 'x-forwarded-proto': 'https' }, {}],
    ['junk X-Forwarded-For', { 'x-forwarded-for': 'unknown' }, {}],
  ];
  for (const [name, headers, c] of others) assert.notEqual(classify(headers, ctx(c)).key, local, name);
});

test('direct: a non-loopback peer, whatever its headers say', () => {
  const cases: [string, IncomingHttpHeaders, string, string][] = [
    ['LAN IPv4', {}, '192.168.1.20', '192.168.1.20'],
    ['IPv4-mapped', {}, '::ffff:192.168.1.20', '192.168.1.20'],
    ['spoofed XFF claiming loopback', { 'x-forwarded-for': '127.0.0.1' }, '192.168.1.20', '192.168.1.20'],
    ['tailnet', {}, '100.101.102.103', '100.101.102.103'],
    ['IPv6 keyed by /64', {}, '2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['IPv6 zone id', {}, 'fe80::1234%eth0', 'fe80::/64'],
  ];
  for (const [name, headers, peer, key] of cases) {
    const r = classify(headers, ctx({ peer }));
    assert.equal(r.class, 'direct', name);
    assert.equal(r.client, r.peer, name);
    assert.equal(r.key, key, name);
  }
  // Two addresses in one /64 share a key; the next /64 does not.
  const a = classify({}, ctx({ peer: '2001:db8:1:2::1' })).key;
  const b = classify({}, ctx({ peer: '2001:db8:1:2:ffff:ffff:ffff:ffff' })).key;
  const c = classify({}, ctx({ peer: '2001:db8:1:3::1' })).key;
  assert.equal(a, b);
  assert.notEqual(a, c);
});

test('direct: a non-loopback peer is never local even with a local Host', () => {
  assert.equal(classify({ host: 'localhost' }, ctx({ peer: '192.168.1.20', hostIsLocal: true })).class, 'direct');
});

test('tunnel: the relay-provided visitor address, never headers', () => {
  const r = classify(
    { 'x-forwarded-for': '127.0.0.1' },
    ctx({ peer: '127.0.0.1', tunnelVisitor: '::ffff:198.51.100.7', isTrustedProxy: createCidrMatcher(['127.0.0.0/8']) }),
  );
  assert.deepEqual(r, { class: 'tunnel', peer: '127.0.0.1', client: '198.51.100.7', key: 'tunnel:198.51.100.7' });
  const v6 = classify({}, ctx({ tunnelVisitor: '2001:db8:aa:bb:1:2:3:4' }));
  assert.equal(v6.class, 'tunnel');
  assert.equal(v6.key, 'tunnel:2001:db8:aa:bb::/64', 'its own namespace: never a local or LAN key');
  // A stream is tunnel even from a loopback peer with a local Host: never local.
  assert.equal(classify({}, ctx({ tunnelVisitor: '127.0.0.1' })).class, 'tunnel');
});

test('trusted proxy: X-Forwarded-For walked right to left', () => {
  const isTrustedProxy = createCidrMatcher(['10.0.0.0/8', '127.0.0.1']);
  const cases: [string, string | undefined, string, string][] = [
    // [name, XFF, client, key]
    ['one hop', '203.0.113.7', '203.0.113.7', '203.0.113.7'],
    ['leftmost spoofed entry ignored', '1.1.1.1, 203.0.113.7', '203.0.113.7', '203.0.113.7'],
    ['spoofed loopback ignored', '127.0.0.1, 203.0.113.7', '203.0.113.7', '203.0.113.7'],
    ['inner trusted hops skipped', '6.6.6.6, 203.0.113.7, 10.0.0.3, 10.0.0.4', '203.0.113.7', '203.0.113.7'],
    ['all hops trusted: the leftmost', '10.0.0.9, 10.0.0.3', '10.0.0.9', '10.0.0.9'],
    ['mapped entry', '::ffff:203.0.113.7', '203.0.113.7', '203.0.113.7'],
    ['IPv6 client keyed by /64', '2001:db8:5:6:7:8:9:a', '2001:db8:5:6:7:8:9:a', '2001:db8:5:6::/64'],
    ['whitespace around entries', ' 9.9.9.9 ,203.0.113.7 ', '203.0.113.7', '203.0.113.7'],
    ['junk left of the client ignored', 'garbage, 203.0.113.7', '203.0.113.7', '203.0.113.7'],
    ['no header: the proxy itself', undefined, '10.0.0.2', '10.0.0.2'],
  ];
  for (const [name, xff, client, key] of cases) {
    const headers: IncomingHttpHeaders = xff === undefined ? {} : { 'x-forwarded-for': xff };
    const r = classify(headers, ctx({ peer: '10.0.0.2', isTrustedProxy }));
    assert.equal(r.class, 'trusted-proxy', name);
    assert.equal(r.peer, '10.0.0.2', name);
    assert.equal(r.client, client, name);
    assert.equal(r.key, key, name);
  }
});

test('trusted proxy: a junk entry stops the walk; nothing left of it is believed', () => {
  const isTrustedProxy = createCidrMatcher(['10.0.0.0/8']);
  // The proxy 10.0.0.3 forwarded something it could not attribute: the client-claimed
  // 203.0.113.66 beyond the junk is never taken.
  const r = classify({ 'x-forwarded-for': '203.0.113.66, unknown, 10.0.0.3' }, ctx({ peer: '10.0.0.2', isTrustedProxy }));
  assert.equal(r.class, 'trusted-proxy');
  assert.notEqual(r.client, '203.0.113.66');
  // No usable client address (trusted-proxy auth refuses it): keyed on the peer, not on a hop.
  assert.equal(r.clientUnknown, true);
  assert.equal(r.client, '10.0.0.2');
});

test('trusted proxy on loopback: the same-host proxy explains its headers', () => {
  const isTrustedProxy = createCidrMatcher(['127.0.0.1']);
  const r = classify({ 'x-forwarded-for': '198.51.100.1' }, ctx({ peer: '::ffff:127.0.0.1', isTrustedProxy }));
  assert.deepEqual(r, { class: 'trusted-proxy', peer: '127.0.0.1', client: '198.51.100.1', key: '198.51.100.1' });
});

test('an untrusted peer that sends X-Forwarded-For is keyed on itself', () => {
  const isTrustedProxy = createCidrMatcher(['10.0.0.0/8']);
  const r = classify({ 'x-forwarded-for': '10.0.0.5' }, ctx({ peer: '192.168.1.9', isTrustedProxy }));
  assert.deepEqual(r, { class: 'direct', peer: '192.168.1.9', client: '192.168.1.9', key: '192.168.1.9' });
});

test('an unknown peer is neither local nor trusted', () => {
  const r = classify({}, ctx({ peer: undefined, isTrustedProxy: createCidrMatcher(['0.0.0.0/0']) }));
  assert.equal(r.class, 'direct');
  assert.equal(r.peer, 'unknown');
});
