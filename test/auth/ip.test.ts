// Table tests for src/auth/ip.ts: canonical addresses, address classes, CIDRs, rate-limit keys, Host parsing.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import {
  cidrContains,
  clientKey,
  createCidrMatcher,
  isLinkLocalAddress,
  isLoopbackAddress,
  isPrivateAddress,
  normalizeAddress,
  parseCidr,
  parseHostHeader,
} from '../../src/auth/ip.js';
import { isPortholeError } from '../../src/errors.js';

test('normalizeAddress: canonical forms', () => {
  const cases: [string | undefined, string | undefined][] = [
    // IPv4
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    // IPv4-mapped, dotted and hex
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['::ffff:0102:0304', '1.2.3.4'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['0:0:0:0:0:ffff:c0a8:0101', '192.168.1.1'],
    ['::ffff:1.2.3.4%eth0', '1.2.3.4'],
    // not mapped: IPv4-compatible and IPv4-translated stay IPv6
    ['::1.2.3.4', '::102:304'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    // zone ids
    ['fe80::1%eth0', 'fe80::1'],
    ['FE80::ABCD%25', 'fe80::abcd'],
    // RFC 5952 compression
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'], // longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['1::', '1::'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff'],
    // junk
    [undefined, undefined],
    ['', undefined],
    ['localhost', undefined],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['256.1.1.1', undefined],
    ['01.2.3.4', undefined],
    ['127.1', undefined],
    [' 1.2.3.4', undefined],
    ['1.2.3.4 ', undefined],
    ['1.2.3.4%eth0', undefined],
    ['fe80::1%', undefined],
    [':::', undefined],
    ['1::2::3', undefined],
    [':1::', undefined],
    ['1:2:3:4:5:6:7', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1:2:3:4:5:6:7:8::', undefined],
    ['12345::', undefined],
    ['g::1', undefined],
    ['[::1]', undefined],
    ['::1.2.3.4:5', undefined],
    ['1.2.3.4::', undefined],
    ['::ffff:1.2.3', undefined],
    ['::ffff:01.2.3.4', undefined],
    ['1:2:3:4:5:6:7:1.2.3.4', undefined],
    ['http://1.2.3.4', undefined],
  ];
  for (const [input, expected] of cases) {
    assert.equal(normalizeAddress(input), expected, `normalizeAddress(${JSON.stringify(input)})`);
  }
});

test('normalizeAddress agrees with net.isIP on what is an address', () => {
  const samples = ['1:2:3:4:5:6:1.2.3.4', '::1.2.3.4', '1::1.2.3.4', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', 'a:b:c:d:e:f:0:1'];
  for (const s of samples) {
    assert.equal(isIP(s), 6, s);
    assert.notEqual(normalizeAddress(s), undefined, s);
    // The canonical form is itself an address that normalizes to itself.
    const canonical = normalizeAddress(s)!;
    assert.notEqual(isIP(canonical), 0, canonical);
    assert.equal(normalizeAddress(canonical), canonical, canonical);
  }
});

test('isLoopbackAddress', () => {
  const cases: [string | undefined, boolean][] = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:2', true],
    ['::1%lo', true],
    ['128.0.0.1', false],
    ['126.255.255.255', false],
    ['0.0.0.0', false],
    ['::', false],
    ['::2', false],
    ['::127.0.0.1', false], // IPv4-compatible, not mapped
    ['64:ff9b::7f00:1', false],
    ['localhost', false],
    [undefined, false],
    ['', false],
  ];
  for (const [input, expected] of cases) assert.equal(isLoopbackAddress(input), expected, String(input));
});

test('isPrivateAddress', () => {
  const cases: [string, boolean][] = [
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.15.255.255', false],
    ['172.32.0.0', false],
    ['192.168.0.1', true],
    ['192.169.0.1', false],
    ['100.64.0.1', true],
    ['100.127.255.255', true],
    ['100.63.255.255', false],
    ['100.128.0.0', false],
    ['::ffff:10.1.2.3', true],
    ['fc00::1', true],
    ['fd7a:115c:a1e0::1', true], // tailnet ULA
    ['fe00::1', false],
    ['fbff::1', false],
    ['8.8.8.8', false],
    ['127.0.0.1', false],
    ['2001:db8::1', false],
    ['not an ip', false],
  ];
  for (const [input, expected] of cases) assert.equal(isPrivateAddress(input), expected, input);
});

test('isLinkLocalAddress', () => {
  const cases: [string, boolean][] = [
    ['169.254.0.1', true],
    ['169.254.255.255', true],
    ['169.253.0.1', false],
    ['::ffff:169.254.1.1', true],
    ['fe80::1', true],
    ['fe80::1%eth0', true],
    ['febf:ffff::1', true],
    ['fec0::1', false],
    ['fe7f::1', false],
    ['10.0.0.1', false],
    ['junk', false],
  ];
  for (const [input, expected] of cases) assert.equal(isLinkLocalAddress(input), expected, input);
});

test('parseCidr: valid blocks, masked host bits, canonical text', () => {
  const cases: [string, 4 | 6, number, string][] = [
    ['10.0.0.0/8', 4, 8, '10.0.0.0/8'],
    ['10.1.2.3/8', 4, 8, '10.0.0.0/8'],
    ['192.168.1.77/30', 4, 30, '192.168.1.76/30'],
    ['0.0.0.0/0', 4, 0, '0.0.0.0/0'],
    ['1.2.3.4', 4, 32, '1.2.3.4/32'],
    ['1.2.3.4/32', 4, 32, '1.2.3.4/32'],
    ['2001:db8::/32', 6, 32, '2001:db8::/32'],
    ['2001:DB8:1:2:3::/48', 6, 48, '2001:db8:1::/48'],
    ['::/0', 6, 0, '::/0'],
    ['::1', 6, 128, '::1/128'],
    ['fe80::/10', 6, 10, 'fe80::/10'],
    ['febf::/10', 6, 10, 'fe80::/10'],
    ['::ffff:10.0.0.0/104', 4, 8, '10.0.0.0/8'],
    ['::ffff:1.2.3.4', 4, 32, '1.2.3.4/32'],
    ['::ffff:0:0/96', 4, 0, '0.0.0.0/0'],
  ];
  for (const [input, family, prefix, text] of cases) {
    const cidr = parseCidr(input);
    assert.equal(cidr.family, family, input);
    assert.equal(cidr.prefix, prefix, input);
    assert.equal(cidr.text, text, input);
    assert.equal(cidr.bytes.length, family === 4 ? 4 : 16, input);
  }
});

test('parseCidr: bad input throws INVALID_ARGUMENT naming the input', () => {
  const bad = [
    '',
    '/8',
    '10.0.0.0/',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/08',
    '10.0.0.0/8/8',
    '10.0.0.0/ 8',
    '10.0.0/8',
    '::/129',
    'fe80::1%eth0/64',
    'example.com/24',
    '1.2.3.4/1e1',
  ];
  for (const input of bad) {
    assert.throws(
      () => parseCidr(input),
      (err: unknown) => isPortholeError(err) && err.code === 'INVALID_ARGUMENT' && err.message.includes(JSON.stringify(input)),
      input,
    );
  }
});

test('cidrContains: IPv4, IPv6, mapped', () => {
  const cases: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.200.3.4', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.0.0/8', '::ffff:10.1.1.1', true],
    ['10.0.0.0/8', '::ffff:0a01:0101', true],
    ['192.168.1.76/30', '192.168.1.79', true],
    ['192.168.1.76/30', '192.168.1.80', false],
    ['0.0.0.0/0', '8.8.8.8', true],
    ['0.0.0.0/0', '::1', false],
    ['1.2.3.4', '1.2.3.4', true],
    ['1.2.3.4', '1.2.3.5', false],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['2001:db8::/32', '10.0.0.1', false],
    ['fe80::/10', 'fe80::1%eth0', true],
    ['::1', '::1', true],
    ['::1', '127.0.0.1', false],
    ['::/0', '2001:db8::1', true],
    ['::/0', '1.2.3.4', false], // IPv4 matches IPv4 blocks only
    ['::/0', '::ffff:1.2.3.4', false],
    ['::ffff:10.0.0.0/104', '10.9.9.9', true],
    ['::ffff:10.0.0.0/104', '::ffff:10.9.9.9', true],
    ['10.0.0.0/8', 'junk', false],
    ['10.0.0.0/8', '', false],
  ];
  for (const [block, addr, expected] of cases) {
    assert.equal(cidrContains(parseCidr(block), addr), expected, `${block} ∋ ${addr}`);
  }
});

test('createCidrMatcher', () => {
  const match = createCidrMatcher(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']);
  assert.equal(match('10.1.2.3'), true);
  assert.equal(match('::ffff:10.1.2.3'), true);
  assert.equal(match('2001:db8::5'), true);
  assert.equal(match('192.0.2.1'), true);
  assert.equal(match('192.0.2.2'), false);
  assert.equal(match(undefined), false);
  assert.equal(match('not-an-ip'), false);
  assert.equal(createCidrMatcher([])('10.0.0.1'), false);
  assert.throws(
    () => createCidrMatcher(['10.0.0.0/8', 'nope']),
    (err: unknown) => isPortholeError(err, 'INVALID_ARGUMENT'),
  );
});

test('clientKey: IPv4 as is, IPv6 by /64, non-IPs unchanged', () => {
  const cases: [string, string][] = [
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:0102:0304', '1.2.3.4'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
    ['https://app.example', 'https://app.example'],
    ['', ''],
  ];
  for (const [input, expected] of cases) assert.equal(clientKey(input), expected, input);

  // Same /64 → same key; a different /64 → a different key.
  assert.equal(clientKey('2001:db8:aa:bb:1::1'), clientKey('2001:db8:aa:bb:ffff:ffff:ffff:ffff'));
  assert.notEqual(clientKey('2001:db8:aa:bb::1'), clientKey('2001:db8:aa:bc::1'));
  assert.notEqual(clientKey('1.2.3.4'), clientKey('1.2.3.5'));
});

test('parseHostHeader: well-formed', () => {
  const cases: [string, string, number | undefined][] = [
    ['example.com', 'example.com', undefined],
    ['Example.COM', 'example.com', undefined],
    ['example.com:8080', 'example.com', 8080],
    ['example.com.', 'example.com', undefined],
    ['example.com.:443', 'example.com', 443],
    ['example.com:', 'example.com', undefined], // empty port (RFC 3986 §3.2.3)
    ['localhost:0', 'localhost', 0],
    ['localhost:65535', 'localhost', 65535],
    ['localhost:00080', 'localhost', 80],
    ['127.0.0.1', '127.0.0.1', undefined],
    ['127.0.0.1:7070', '127.0.0.1', 7070],
    ['[::1]', '::1', undefined],
    ['[::1]:7070', '::1', 7070],
    ['[::1]:', '::1', undefined],
    ['[2001:DB8::0:1]:443', '2001:db8::1', 443],
    ['[::ffff:127.0.0.1]:80', '127.0.0.1', 80],
    ['my_host-1.local', 'my_host-1.local', undefined],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', undefined],
    ['ex%41mple.com', 'ex%41mple.com', undefined],
    ['a'.repeat(255), 'a'.repeat(255), undefined],
  ];
  for (const [input, hostname, port] of cases) {
    assert.deepEqual(parseHostHeader(input), { hostname, port }, input);
  }
});

test('parseHostHeader: malformed', () => {
  const bad: (string | undefined)[] = [
    undefined,
    '',
    ':8080',
    '.',
    '.:80',
    'user@example.com',
    'user:pw@example.com',
    'example.com:80:80',
    'example.com:http',
    'example.com:65536',
    'example.com:-1',
    'example.com:+80',
    'example.com: 80',
    'example.com:99999999999999999999',
    '::1',
    '[::1',
    '::1]',
    '[::1]]',
    '[::1]x',
    '[::1]:abc',
    '[]',
    '[127.0.0.1]',
    '[fe80::1%eth0]',
    '[fe80::1%25eth0]',
    '[v1.fe]',
    'exa mple.com',
    ' example.com',
    'example.com ',
    'example.com\t',
    'exa\u0000mple.com',
    'exa\nmple.com',
    'example.com/path',
    'example.com\\evil',
    'example.com?x',
    'example.com#x',
    'exa%4mple.com',
    'exa%zzmple.com',
    'bücher.example',
    'a'.repeat(256),
    `${'a'.repeat(250)}:12345`,
  ];
  for (const input of bad) assert.equal(parseHostHeader(input), undefined, JSON.stringify(input));
});
