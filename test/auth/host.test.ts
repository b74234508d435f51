// Tests for src/auth/host.ts, the DNS-rebinding defence (DESIGN §3.1). Hosts go through
// parseHostHeader first, exactly as the pipeline hands them over.
import assert from 'node:assert/strict';
import { hostname as osHostname } from 'node:os';
import { test } from 'node:test';
import { createHostPolicy } from '../../src/auth/host.js';
import { parseHostHeader } from '../../src/auth/ip.js';

/** Host header → the policy's answer, as pipeline.ts asks it. */
function allowed(policy: ReturnType<typeof createHostPolicy>, hostHeader: string, localAddress?: string): boolean {
  const parsed = parseHostHeader(hostHeader);
  assert.ok(parsed, `Host ${hostHeader} should parse`);
  return policy.isAllowed(parsed.hostname, localAddress);
}

test('loopback names and addresses are always allowed', () => {
  const policy = createHostPolicy({ names: [] });
  const hosts = [
    'localhost',
    'localhost:7070',
    'LOCALHOST:7070',
    'localhost.', // absolute form
    'app.localhost:7070', // RFC 6761 §6.3: *.localhost is loopback
    'a.b.localhost',
    '127.0.0.1',
    '127.0.0.1:7070',
    '127.1.2.3:80',
    '[::1]:7070',
    '[0:0:0:0:0:0:0:1]',
    '[::ffff:127.0.0.1]:7070',
  ];
  for (const h of hosts) {
    assert.equal(allowed(policy, h, '127.0.0.1'), true, h);
    assert.equal(allowed(policy, h, undefined), true, `${h} without a local address`);
  }
});

test('unknown names are refused, loopback connections included (DNS rebinding)', () => {
  const policy = createHostPolicy({ names: ['desk.example'] });
  const hosts = [
    'evil.example',
    'evil.example:7070',
    'localhost.evil.example', // looks like localhost, is not
    'evil-localhost',
    'localhostx',
    '127.0.0.1.evil.example',
    'desk.example.evil.example',
    'sub.desk.example', // configured names are exact, not suffixes
    'xdesk.example',
  ];
  for (const h of hosts) {
    assert.equal(allowed(policy, h, '127.0.0.1'), false, `${h} from loopback`);
    assert.equal(allowed(policy, h, '192.168.1.5'), false, `${h} from the LAN`);
  }
});

test('an IP literal is allowed when it is the address the client connected to', () => {
  const policy = createHostPolicy({ names: [] });
  assert.equal(allowed(policy, '192.168.1.5:7070', '192.168.1.5'), true);
  // Node reports dual-stack sockets' local addresses IPv4-mapped.
  assert.equal(allowed(policy, '192.168.1.5:7070', '::ffff:192.168.1.5'), true);
  assert.equal(allowed(policy, '[::ffff:192.168.1.5]', '192.168.1.5'), true);
  assert.equal(allowed(policy, '[fd00::5]', 'fd00:0::5'), true);
  assert.equal(allowed(policy, '[fe80::5]', 'fe80::5%eth0'), true);
  assert.equal(allowed(policy, '100.101.102.103', '100.101.102.103'), true);
});

test('other IP literals are refused', () => {
  const policy = createHostPolicy({ names: [] });
  const cases: [string, string | undefined][] = [
    ['192.168.1.6', '192.168.1.5'],
    ['192.168.1.5', undefined],
    ['192.168.1.5', '127.0.0.1'],
    ['10.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '127.0.0.1'], // "0.0.0.0 day": browsers sent these to local services
    ['0.0.0.0:7070', '192.168.1.5'],
    ['[::]', '127.0.0.1'],
    ['[fd00::6]', 'fd00::5'],
    ['8.8.8.8', '127.0.0.1'],
  ];
  for (const [h, local] of cases) assert.equal(allowed(policy, h, local), false, `${h} via ${local}`);
});

test('configured names: case, trailing dot, brackets, IP canonical form', () => {
  const policy = createHostPolicy({
    names: [' Desk.Example. ', 'laptop.tailnet.ts.net', '192.168.1.42', '[FD00:0::1]', '::ffff:10.0.0.7', '', '0.0.0.0', '::'],
  });
  const cases: [string, boolean][] = [
    ['desk.example', true],
    ['DESK.example:443', true],
    ['desk.example.', true],
    ['laptop.tailnet.ts.net', true],
    ['laptop.tailnet.ts.net.', true],
    ['192.168.1.42:8080', true],
    ['192.168.1.43', false],
    ['[fd00::1]', true],
    ['[fd00:0:0:0:0:0:0:1]:7070', true],
    ['10.0.0.7', true],
    ['[::ffff:10.0.0.7]', true],
    // wildcard binds are not names a client should send
    ['0.0.0.0', false],
    ['[::]', false],
  ];
  for (const [h, want] of cases) assert.equal(allowed(policy, h, '127.0.0.1'), want, h);
});

test("the machine's own name and its .local form are allowed", () => {
  const host = osHostname().toLowerCase();
  if (!host) return;
  const policy = createHostPolicy({ names: [] });
  assert.equal(policy.isAllowed(host, '127.0.0.1'), true);
  assert.equal(policy.isAllowed(`${host.split('.')[0]}.local`, '127.0.0.1'), true);
  assert.equal(policy.isAllowed(`${host}.evil.example`, '127.0.0.1'), false);
});

test('dynamic names are read on every check', () => {
  let names: string[] = [];
  let calls = 0;
  const policy = createHostPolicy({
    names: [],
    dynamicNames: () => {
      calls++;
      return names;
    },
  });
  assert.equal(allowed(policy, 'desk-abc.tunnel.example'), false);
  names = ['Desk-ABC.tunnel.example'];
  assert.equal(allowed(policy, 'desk-abc.tunnel.example'), true);
  assert.equal(allowed(policy, 'DESK-abc.TUNNEL.example:443'), true);
  assert.equal(allowed(policy, 'desk-abc.tunnel.example.'), true);
  assert.equal(allowed(policy, 'other.tunnel.example'), false);
  names = [];
  assert.equal(allowed(policy, 'desk-abc.tunnel.example'), false, 'a name that went away is refused again');
  assert.ok(calls >= 5);
});

test('dynamic names are normalised like configured ones', {
}, () => {
  const policy = createHostPolicy({ names: [], dynamicNames: () => ['desk.ts.net.', '100.101.102.103'] });
  assert.equal(allowed(policy, 'desk.ts.net', '127.0.0.1'), true);
  assert.equal(allowed(policy, '100.101.102.103', '127.0.0.1'), true);
});
