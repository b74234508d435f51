// HOST:PORT parsing shared by the relay's listeners and the desk's relay address.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostPort } from '../../src/util/host-port.js';

test('addresses to dial need a host and a non-zero port', () => {
  assert.deepEqual(parseHostPort('tunnel.example.test:443', 'relay'), { host: 'tunnel.example.test', port: 443 });
  assert.deepEqual(parseHostPort('[::1]:7443', 'relay'), { host: '::1', port: 7443 });
  for (const bad of [':443', 'host:0', 'host', 'host:99999', 'host:x', '[::1', '::1:80']) {
    assert.throws(() => parseHostPort(bad, 'relay'), { code: 'INVALID_ARGUMENT' }, bad);
  }
});

test('listeners may omit the host (every address) and use port 0', () => {
  assert.deepEqual(parseHostPort(':443', '--listen', true), { host: '0.0.0.0', port: 443 });
  assert.deepEqual(parseHostPort('127.0.0.1:0', '--listen', true), { host: '127.0.0.1', port: 0 });
  assert.throws(() => parseHostPort('127.0.0.1:65536', '--listen', true), { code: 'INVALID_ARGUMENT' });
});
