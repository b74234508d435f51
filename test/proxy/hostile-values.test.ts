// Hostile values in a public URL: WHATWG URL parsing keeps ";", "{", "}", "$", quotes and
// backticks in a hostname, and public_url ends up verbatim in the generated nginx/Caddy
// configs (server_name, `return 308 …`, the Caddy site address) — where "$http_x" becomes
// an nginx variable (an open redirect) and ";"/"{" new directives. It can be saved from the
// console API, so it is not only the operator's own typing. A public URL's host must be a
// DNS name or an IP address; nothing else is accepted anywhere.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkPublicUrl } from '../../src/config/validate.js';
import { isPortholeError } from '../../src/errors.js';
import { caddyConfig } from '../../src/proxy/caddy.js';
import { nginxConfig } from '../../src/proxy/nginx.js';
import { resolveProxyOptions } from '../../src/proxy/options.js';

const HOSTILE = [
  'https://desk.example.com$http_x_go', // nginx variable: `return 308 https://desk.example.com$http_x_go$request_uri`
  'https://x;return', // ends server_name, starts a directive
  'https://x{a}', // a block in nginx, a placeholder in Caddy
  'https://{$HOME}', // Caddyfile environment substitution
  "https://a'b",
  'https://a"b',
  'https://a`b',
  'https://a*b',
];

describe('public URL hosts that are not DNS names or addresses', () => {
  for (const url of HOSTILE) {
    test(`refused: ${url}`, () => {
      assert.equal(checkPublicUrl(url).value, undefined, `${url} accepted as ${checkPublicUrl(url).value}`);
      for (const gen of [nginxConfig, caddyConfig]) {
        assert.throws(
          () => gen(resolveProxyOptions({ publicUrl: url, upstream: { host: '127.0.0.1', port: 7070 } })),
          (e: unknown) => isPortholeError(e, 'INVALID_ARGUMENT'),
        );
      }
    });
  }

  test('ordinary names, IDNs (as punycode), IPv4 and IPv6 literals still pass', () => {
    for (const [url, want] of [
      ['https://desk.example.com', 'https://desk.example.com'],
      ['https://my_host.example.com', 'https://my_host.example.com'],
      ['https://bücher.example', 'https://xn--bcher-kva.example'],
      ['https://203.0.113.7:8443', 'https://203.0.113.7:8443'],
      ['https://[2001:db8::1]', 'https://[2001:db8::1]'],
      ['http://desk.local.', 'http://desk.local.'],
    ] as const) {
      assert.deepEqual(checkPublicUrl(url), { value: want }, url);
    }
  });
});
