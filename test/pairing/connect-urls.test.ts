// Connect URLs (src/pairing/connect-urls.ts): ordered reverse proxy, tunnel, Tailscale, LAN;
// no loopback, no duplicates; http:// only for private, link-local and .local hosts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectUrlsFromStatus, filterConnectUrls } from '../../src/pairing/connect-urls.js';

test('order, loopback, duplicates and cleartext', () => {
  const status = {
    exposure: {
      methods: {
        lan: { urls: ['http://192.168.1.5:8080', 'http://127.0.0.1:8080', 'http://[fe80::1]:8080', 'http://203.0.113.9:8080'] },
        tailscale: { urls: ['https://desk.tail1234.ts.net'] },
        tunnel: { urls: ['https://abc.relay.example/'] },
        reverseProxy: { urls: ['https://desk.example.com/porthole/'] },
        ssh: { urls: [] },
      },
    },
    tls: null,
  };
  assert.deepEqual(connectUrlsFromStatus(status), [
    'https://desk.example.com/porthole',
    'https://abc.relay.example',
    'https://desk.tail1234.ts.net',
    'http://192.168.1.5:8080',
    'http://[fe80::1]:8080',
  ]);
});

test('TLS on the gateway: LAN URLs become https; public hosts need https', () => {
  const urls = connectUrlsFromStatus({ exposure: { methods: { lan: { urls: ['http://10.0.0.2:9000'] } } }, tls: { pin: 'x' } });
  assert.deepEqual(urls, ['https://10.0.0.2:9000']);
  assert.deepEqual(filterConnectUrls(['http://desk.local:80', 'http://desk.example.com', 'https://desk.example.com', 'https://DESK.example.com/', 'http://localhost:1', 'ftp://x']), [
    'http://desk.local',
    'https://desk.example.com',
  ]);
});

test('without the overview: gateway.public_url, then the banner address', () => {
  assert.deepEqual(connectUrlsFromStatus({ connectUrl: 'http://192.168.0.4:8080' }, 'https://p.example.com'), [
    'https://p.example.com',
    'http://192.168.0.4:8080',
  ]);
});
