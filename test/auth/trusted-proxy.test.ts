// Tests for src/auth/trusted-proxy.ts (which user a trusted proxy asserts) and for the
// trusted-proxy rules of src/auth/classify.ts: X-Forwarded-For walked right to left,
// junk / empty / all-trusted chains are "no usable client address", X-Real-IP only on
// request, IPv6 and IPv4-mapped addresses normalised.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { type ClassifyContext, classify } from '../../src/auth/classify.js';
import { createCidrMatcher } from '../../src/auth/ip.js';
import { proxyUser, type TrustedProxyOptions } from '../../src/auth/trusted-proxy.js';

const trusted = createCidrMatcher(['10.0.0.0/24', 'fd00::/64']);

function ctx(overrides: Partial<ClassifyContext> = {}): ClassifyContext {
  return { peer: '10.0.0.5', hostIsLocal: false, crossSite: false, isTrustedProxy: trusted, ...overrides };
}

test('a trusted peer: the rightmost X-Forwarded-For entry that is not a proxy is the client', () => {
  const cases: [string, string, string][] = [
    ['one hop', '203.0.113.9', '203.0.113.9'],
    ['spoofed left entries are ignored', '1.1.1.1, 203.0.113.9', '203.0.113.9'],
    ['trusted hops are skipped', '203.0.113.9, 10.0.0.7, 10.0.0.8', '203.0.113.9'],
    ['a spoofed trusted address left of the client is never reached', '10.0.0.9, 203.0.113.9', '203.0.113.9'],
    ['ports and quotes are tolerated', '"203.0.113.9:4711"', '203.0.113.9'],
    ['IPv6 in brackets with port', '[2001:db8::7]:443', '2001:db8::7'],
    ['IPv6 bare', '2001:DB8:0:0::7', '2001:db8::7'],
    ['IPv4-mapped IPv6 is IPv4', '::ffff:203.0.113.9', '203.0.113.9'],
    ['repeated headers are joined in order', '203.0.113.9, 10.0.0.7', '203.0.113.9'],
  ];
  for (const [name, xff, client] of cases) {
    const r = classify({ 'x-forwarded-for': xff }, ctx());
    assert.equal(r.class, 'trusted-proxy', name);
    assert.equal(r.client, client, name);
    assert.equal(r.clientUnknown, undefined, name);
  }
  const ipv6Key = classify({ 'x-forwarded-for': '2001:db8:1:2:3:4:5:6' }, ctx());
  assert.equal(ipv6Key.key, '2001:db8:1:2::/64', 'IPv6 clients are keyed by /64');
  const mappedPeer = classify({ 'x-forwarded-for': '203.0.113.9' }, ctx({ peer: '::ffff:10.0.0.5' }));
  assert.equal(mappedPeer.class, 'trusted-proxy', 'an IPv4-mapped peer matches an IPv4 block');
  const v6Peer = classify({ 'x-forwarded-for': '203.0.113.9' }, ctx({ peer: 'fd00::1' }));
  assert.equal(v6Peer.class, 'trusted-proxy', 'IPv6 proxies');
});

test('only trusted entries: the leftmost, which a trusted proxy wrote, is the client', () => {
  assert.equal(classify({ 'x-forwarded-for': '10.0.0.7, 10.0.0.8' }, ctx()).client, '10.0.0.7');
  const self = classify({ 'x-forwarded-for': '10.0.0.5' }, ctx());
  assert.equal(self.client, '10.0.0.5');
  assert.equal(self.clientUnknown, undefined);
});

test('no usable client address: missing, empty, or junk reached first', () => {
  const cases: [string, IncomingHttpHeaders][] = [
    ['no header', {}],
    ['empty header', { 'x-forwarded-for': '' }],
    ['junk rightmost', { 'x-forwarded-for': '203.0.113.9, unknown' }],
    ['junk after trusted hops', { 'x-forwarded-for': '203.0.113.9, garbage, 10.0.0.7' }],
    ['trailing comma', { 'x-forwarded-for': '203.0.113.9,' }],
    ['a host name', { 'x-forwarded-for': 'evil.example' }],
    ['obfuscated (RFC 7239) identifier', { 'x-forwarded-for': '_hidden' }],
    ['X-Real-IP is not read unless enabled', { 'x-real-ip': '203.0.113.9' }],
  ];
  for (const [name, headers] of cases) {
    const r = classify(headers, ctx());
    assert.equal(r.class, 'trusted-proxy', name);
    assert.equal(r.clientUnknown, true, name);
    assert.equal(r.client, '10.0.0.5', `${name}: falls back to the peer for logs only`);
  }
});

test('X-Real-IP only when enabled, then alone: one valid address', () => {
  const on = ctx({ useXRealIp: true });
  assert.equal(classify({ 'x-real-ip': '203.0.113.9' }, on).client, '203.0.113.9');
  assert.equal(classify({ 'x-real-ip': '2001:db8::1' }, on).client, '2001:db8::1');
  // With X-Real-IP in use, X-Forwarded-For (possibly the client's own) is not walked.
  const both = classify({ 'x-real-ip': '203.0.113.9', 'x-forwarded-for': '198.51.100.1' }, on);
  assert.equal(both.client, '203.0.113.9');
  for (const headers of [{}, { 'x-real-ip': '' }, { 'x-real-ip': 'junk' }, { 'x-real-ip': '1.2.3.4, 5.6.7.8' }, { 'x-forwarded-for': '203.0.113.9' }]) {
    assert.equal(classify(headers, on).clientUnknown, true, JSON.stringify(headers));
  }
});

test('an untrusted peer never gets the trusted-proxy class, whatever it sends', () => {
  const r = classify({ 'x-forwarded-for': '203.0.113.9', 'x-forwarded-user': 'admin' }, ctx({ peer: '192.0.2.66' }));
  assert.equal(r.class, 'direct');
  assert.equal(r.client, '192.0.2.66');
});

const OPTS: TrustedProxyOptions = { userHeader: 'X-Forwarded-User', requiredHeaders: [], allowUsers: [] };

function req(headers: Record<string, string[]>): { headersDistinct: Record<string, string[]> } {
  return { headersDistinct: headers };
}

test('proxyUser: the user the proxy names, trimmed', () => {
  assert.deepEqual(proxyUser(req({ 'x-forwarded-user': [' alice@example.com '] }), OPTS), { ok: true, user: 'alice@example.com' });
  const custom = { ...OPTS, userHeader: 'Remote-User' };
  assert.deepEqual(proxyUser(req({ 'remote-user': ['bob'] }), custom), { ok: true, user: 'bob' });
});

test('proxyUser: fails closed', () => {
  const cases: [string, Record<string, string[]>, TrustedProxyOptions, string][] = [
    ['no header', {}, OPTS, 'AUTH_REQUIRED'],
    ['empty header', { 'x-forwarded-user': ['  '] }, OPTS, 'AUTH_REQUIRED'],
    ['sent twice (client + proxy)', { 'x-forwarded-user': ['mallory', 'alice'] }, OPTS, 'USER_NOT_ALLOWED'],
    ['control characters', { 'x-forwarded-user': ['alice\u0007'] }, OPTS, 'USER_NOT_ALLOWED'],
    ['too long', { 'x-forwarded-user': ['a'.repeat(257)] }, OPTS, 'USER_NOT_ALLOWED'],
    ['required header missing', { 'x-forwarded-user': ['alice'] }, { ...OPTS, requiredHeaders: ['X-Forwarded-Email'] }, 'AUTH_REQUIRED'],
    [
      'required header empty',
      { 'x-forwarded-user': ['alice'], 'x-forwarded-email': [''] },
      { ...OPTS, requiredHeaders: ['X-Forwarded-Email'] },
      'AUTH_REQUIRED',
    ],
    ['not in allow_users', { 'x-forwarded-user': ['mallory'] }, { ...OPTS, allowUsers: ['alice'] }, 'USER_NOT_ALLOWED'],
    ['allow_users is case-sensitive', { 'x-forwarded-user': ['Alice'] }, { ...OPTS, allowUsers: ['alice'] }, 'USER_NOT_ALLOWED'],
  ];
  for (const [name, headers, opts, code] of cases) {
    const r = proxyUser(req(headers), opts);
    assert.equal(r.ok, false, name);
    if (!r.ok) {
      assert.equal(r.err.code, code, name);
      assert.doesNotMatch(r.err.message, /mallory/, `${name}: the user name is not reflected`);
    }
  }
  const allowed = proxyUser(
    req({ 'x-forwarded-user': ['alice'], 'x-forwarded-email': ['alice@example.com'] }),
    { ...OPTS, requiredHeaders: ['X-Forwarded-Email'], allowUsers: ['alice', 'bob'] },
  );
  assert.deepEqual(allowed, { ok: true, user: 'alice' });
});
