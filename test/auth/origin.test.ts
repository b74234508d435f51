// Tests for src/auth/origin.ts: Origin normalisation, the allowed-origins policy (full
// origins exact, bare hosts any scheme/port) and the cross-site rule of DESIGN §2.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import {
  createOriginPolicy,
  isCrossSite,
  isOriginAcceptable,
  normalizeOrigin,
  ownOrigin,
} from '../../src/auth/origin.js';
import { isPortholeError } from '../../src/errors.js';

test('normalizeOrigin: canonical scheme://host[:port]', () => {
  const cases: [string | undefined, string | undefined][] = [
    ['http://example.com', 'http://example.com'],
    ['http://example.com/', 'http://example.com'],
    // default ports dropped, others kept
    ['http://example.com:80', 'http://example.com'],
    ['https://example.com:443', 'https://example.com'],
    ['https://example.com:80', 'https://example.com:80'],
    ['http://example.com:443', 'http://example.com:443'],
    ['http://127.0.0.1:7070', 'http://127.0.0.1:7070'],
    // case folded
    ['HTTP://Example.COM:8080', 'http://example.com:8080'],
    ['https://LAPTOP.tailnet.ts.net', 'https://laptop.tailnet.ts.net'],
    // IPv6 literals keep their brackets, in canonical form
    ['http://[::1]:7070', 'http://[::1]:7070'],
    ['http://[FD00:0:0::1]', 'http://[fd00::1]'],
    // opaque origins and junk
    ['null', undefined],
    [undefined, undefined],
    ['', undefined],
    ['example.com', undefined],
    ['not a url', undefined],
    ['http://', undefined],
    // only http(s)
    ['ws://example.com', undefined],
    ['file:///etc/passwd', undefined],
    ['chrome-extension://abcdef', undefined],
    ['javascript:alert(1)', undefined],
    // an Origin never has a path, query, fragment or userinfo
    ['http://example.com/path', undefined],
    ['http://example.com/?q=1', undefined],
    ['http://example.com/#frag', undefined],
    ['http://user@example.com', undefined],
    ['http://user:pass@example.com', undefined],
    ['http://allowed.example@evil.example', undefined],
  ];
  for (const [input, want] of cases) {
    assert.equal(normalizeOrigin(input), want, `normalizeOrigin(${JSON.stringify(input)})`);
  }
});

test('ownOrigin: scheme plus the Host the browser used', () => {
  assert.equal(ownOrigin('http', '127.0.0.1:7070'), 'http://127.0.0.1:7070');
  assert.equal(ownOrigin('https', 'Desk.Example:443'), 'https://desk.example');
  assert.equal(ownOrigin('http', '[::1]:7070'), 'http://[::1]:7070');
  assert.equal(ownOrigin('http', undefined), undefined);
});

test('createOriginPolicy: full origins match exactly, including scheme and port', () => {
  const policy = createOriginPolicy(['https://app.example:8443', 'http://LAN.example', 'https://plain.example:443']);
  assert.deepEqual([...policy.origins].sort(), ['http://lan.example', 'https://app.example:8443', 'https://plain.example']);
  assert.equal(policy.hosts.size, 0);
  const cases: [string | undefined, boolean][] = [
    ['https://app.example:8443', true],
    ['https://APP.example:8443', true],
    ['https://app.example', false], // other port
    ['https://app.example:8444', false],
    ['http://app.example:8443', false], // other scheme
    ['http://lan.example', true],
    ['http://lan.example:80', true],
    ['http://lan.example:8080', false],
    ['https://lan.example', false],
    ['https://plain.example', true],
    ['https://sub.app.example:8443', false],
    ['https://app.example.evil.example:8443', false],
    ['null', false],
    [undefined, false],
    ['', false],
  ];
  for (const [origin, want] of cases) assert.equal(policy.isAllowed(origin), want, `isAllowed(${origin})`);
});

test('createOriginPolicy: bare hosts allow any scheme and port of that host only', () => {
  const policy = createOriginPolicy(['laptop.tailnet.ts.net', '192.168.1.42', '[FD00::1]', 'Mixed.Example.']);
  assert.deepEqual([...policy.hosts].sort(), ['192.168.1.42', 'fd00::1', 'laptop.tailnet.ts.net', 'mixed.example']);
  assert.equal(policy.origins.size, 0);
  const cases: [string, boolean][] = [
    ['http://laptop.tailnet.ts.net', true],
    ['https://laptop.tailnet.ts.net', true],
    ['https://laptop.tailnet.ts.net:8443', true],
    ['http://LAPTOP.tailnet.ts.net:1', true],
    ['https://evil.laptop.tailnet.ts.net', false],
    ['https://laptop.tailnet.ts.net.evil.example', false],
    ['http://192.168.1.42:5173', true],
    ['https://192.168.1.42', true],
    ['http://192.168.1.43', false],
    ['http://192.168.1.4', false],
    // IPv6 bare host, any non-canonical spelling of the same address
    ['http://[fd00::1]:3000', true],
    ['https://[fd00:0:0:0:0:0:0:1]', true],
    ['http://[fd00::2]', false],
    // a trailing dot in the configured entry is dropped
    ['http://mixed.example:9', true],
    // still only http(s) origins
    ['ws://laptop.tailnet.ts.net', false],
    ['null', false],
  ];
  for (const [origin, want] of cases) assert.equal(policy.isAllowed(origin), want, `isAllowed(${origin})`);
});

test('createOriginPolicy: blank entries are skipped, whitespace trimmed', () => {
  const policy = createOriginPolicy(['', '   ', '  https://a.example  ', ' b.example ']);
  assert.deepEqual([...policy.origins], ['https://a.example']);
  assert.deepEqual([...policy.hosts], ['b.example']);
  assert.equal(createOriginPolicy([]).isAllowed('http://127.0.0.1'), false);
});

test('createOriginPolicy: invalid entries throw INVALID_ARGUMENT', () => {
  const bad = [
    'https://app.example/path',
    'https://user@app.example',
    'https://',
    'ftp://app.example',
    'ws://app.example',
    'file:///x',
    'app.example:8443', // a bare host with a port: write the full origin instead
    'app.example/path',
    'user@app.example',
    'fd00::1', // IPv6 needs brackets
    '[fd00::1]:80',
    '[not-ip]',
    'http:app.example',
    'has space.example',
  ];
  for (const entry of bad) {
    assert.throws(
      () => createOriginPolicy(['https://fine.example', entry]),
      (err: unknown) => isPortholeError(err, 'INVALID_ARGUMENT'),
      `entry ${JSON.stringify(entry)} should be refused`,
    );
  }
});

const OWN = 'http://127.0.0.1:7070';
const policy = createOriginPolicy(['https://allowed.example', 'lan.example']);

test('isCrossSite: Origin header alone', () => {
  const cases: [string, IncomingHttpHeaders, boolean][] = [
    ['no Origin (curl, native client)', {}, false],
    ['own origin', { origin: OWN }, false],
    ['own origin, other spelling', { origin: 'HTTP://127.0.0.1:7070' }, false],
    ['allowed full origin', { origin: 'https://allowed.example' }, false],
    ['allowed bare host', { origin: 'http://lan.example:5173' }, false],
    ['foreign origin', { origin: 'https://evil.example' }, true],
    ['own host, other port', { origin: 'http://127.0.0.1:8080' }, true],
    ['own host, other scheme', { origin: 'https://127.0.0.1:7070' }, true],
    ['allowed host, wrong scheme for a full origin', { origin: 'http://allowed.example' }, true],
    ['"null" (sandboxed iframe, file:, data:)', { origin: 'null' }, true],
    ['junk Origin', { origin: 'garbage' }, true],
    ['localhost is not 127.0.0.1', { origin: 'http://localhost:7070' }, true],
  ];
  for (const [name, headers, want] of cases) assert.equal(isCrossSite(headers, OWN, policy), want, name);
});

test('isCrossSite: Sec-Fetch-Site, alone and with Origin', () => {
  const cases: [string, IncomingHttpHeaders, boolean][] = [
    ['none (typed URL, bookmark)', { 'sec-fetch-site': 'none' }, false],
    ['same-origin', { 'sec-fetch-site': 'same-origin' }, false],
    ['same-origin with own Origin', { 'sec-fetch-site': 'same-origin', origin: OWN }, false],
    ['cross-site, no Origin (img, navigation)', { 'sec-fetch-site': 'cross-site' }, true],
    ['cross-site even with an allowed Origin', { 'sec-fetch-site': 'cross-site', origin: 'https://allowed.example' }, true],
    ['cross-site with own Origin', { 'sec-fetch-site': 'cross-site', origin: OWN }, true],
    ['same-site without Origin', { 'sec-fetch-site': 'same-site' }, true],
    ['same-site with a foreign Origin', { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:9999' }, true],
    ['same-site with an allowed Origin', { 'sec-fetch-site': 'same-site', origin: 'https://allowed.example' }, false],
    ['same-site with an allowed bare host', { 'sec-fetch-site': 'same-site', origin: 'https://lan.example:1' }, false],
    ['same-site with own (not listed) Origin', { 'sec-fetch-site': 'same-site', origin: OWN }, true],
    ['same-origin but a foreign Origin', { 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }, true],
    ['unknown value', { 'sec-fetch-site': 'weird' }, true],
    ['wrong case is not trusted', { 'sec-fetch-site': 'Same-Origin' }, true],
    ['two values joined by Node', { 'sec-fetch-site': 'same-origin, cross-site' }, true],
  ];
  for (const [name, headers, want] of cases) assert.equal(isCrossSite(headers, OWN, policy), want, name);
});

test('isCrossSite: an opaque Origin is cross-site even when the own origin is unknown', {
}, () => {
  assert.equal(isCrossSite({ origin: 'null' }, undefined, policy), true);
  assert.equal(isCrossSite({ origin: 'garbage' }, undefined, policy), true);
});

test('isOriginAcceptable', () => {
  const cases: [string | undefined, boolean][] = [
    [undefined, true], // non-browser clients send none
    [OWN, true],
    ['http://127.0.0.1:7070/', true],
    ['https://allowed.example', true],
    ['https://lan.example:8443', true],
    ['https://evil.example', false],
    ['http://127.0.0.1:7071', false],
    ['null', false],
    ['', false],
    ['garbage', false],
  ];
  for (const [origin, want] of cases) assert.equal(isOriginAcceptable(origin, OWN, policy), want, `origin ${origin}`);
});

test('isOriginAcceptable: "null" is refused even when the own origin is unknown', {
}, () => {
  assert.equal(isOriginAcceptable('null', undefined, policy), false);
});
