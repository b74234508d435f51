// Table tests for the value grammars: origins, CIDRs, URLs, header names, labels, paths.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkCidr,
  checkEmail,
  checkHeaderName,
  checkHost,
  checkHostPort,
  checkHttpsUrl,
  checkLabel,
  checkOrigin,
  checkPublicPath,
  checkPublicUrl,
  checkRemoteUrl,
  checkSshTarget,
} from '../../src/config/validate.js';

type Check = (v: string) => { value?: unknown; problem?: string };

function table(check: Check, good: [string, string][], badValues: string[]): void {
  for (const [input, want] of good) {
    const got = check(input);
    assert.equal(got.problem, undefined, `${input}: ${got.problem}`);
    assert.equal(got.value, want, input);
  }
  for (const input of badValues) assert.ok(check(input).problem, `${input} should be refused`);
}

test('allowed origins: full origins and bare hosts', () => {
  table(
    checkOrigin,
    [
      ['https://app.example.com', 'https://app.example.com'],
      ['HTTPS://App.Example.com:443/', 'https://app.example.com'],
      ['http://127.0.0.1:5173', 'http://127.0.0.1:5173'],
      ['http://[::1]:8080', 'http://[::1]:8080'],
      ['tauri://localhost', 'tauri://localhost'],
      ['laptop.tailnet.ts.net', 'laptop.tailnet.ts.net'],
      ['192.168.1.42', '192.168.1.42'],
      ['[0:0:0:0:0:0:0:1]', '[::1]'],
      ['fe80::1', '[fe80::1]'],
      ['localhost', 'localhost'],
    ],
    [
      '*',
      'null',
      'https://app.example.com/path',
      'https://app.example.com?x',
      'https://user@app.example.com',
      'https://app.example.com:0',
      'https://app.example.com:99999',
      'app.example.com:8080',
      '192.168.1',
      '*.example.com',
      'exa mple.com',
      'https://',
      '-bad.example',
    ],
  );
});

test('trusted proxies: IPs and CIDRs', () => {
  table(
    checkCidr,
    [
      ['10.0.0.1', '10.0.0.1'],
      ['10.0.0.0/8', '10.0.0.0/8'],
      ['0.0.0.0/0', '0.0.0.0/0'],
      ['fd00::/8', 'fd00::/8'],
      ['::1/128', '::1/128'],
    ],
    ['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'proxy.example', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '1.2.3.4/8a'],
  );
});

test('public_url: an http(s) origin, no path, query or credentials', () => {
  table(
    checkPublicUrl,
    [
      ['https://desk.example.com', 'https://desk.example.com'],
      ['https://desk.example.com/', 'https://desk.example.com'],
      ['http://192.168.1.10:8443', 'http://192.168.1.10:8443'],
    ],
    ['desk.example.com', 'http://desk.example.com:8443', 'ftp://desk.example.com', 'https://desk.example.com/app', 'https://desk.example.com/?a=1', 'https://a:b@desk.example.com', 'https://'],
  );
  table(checkRemoteUrl, [['https://desk.example.com/base', 'https://desk.example.com/base']], ['https://desk.example.com/?t=1', 'ws://x']);
});

test('host, relay, subdomain, header, ssh target and public paths', () => {
  table(checkHost, [['0.0.0.0', '0.0.0.0'], ['[::]', '::'], ['my-host.local', 'my-host.local']], ['', 'a b', '[::1']);
  table(checkHostPort, [['relay.example:443', 'relay.example:443'], ['[::1]:7000', '[::1]:7000']], ['relay.example', '::1:7000', 'relay.example:0', ':443']);
  // The relay's rule (src/relay/names.ts): what registration would refuse, config check refuses.
  table(checkLabel, [['desk-1', 'desk-1'], ['Desk', 'desk'], ['abc', 'abc']], ['-desk', 'desk-', 'xn--desk', 'ab--cd', 'a.b', 'a_b', 'x'.repeat(64), 'ab', 'www', 'WWW', 'mail', 'd\u212Aesk']);
  table(checkHeaderName, [['X-Forwarded-User', 'X-Forwarded-User'], ['Remote-User', 'Remote-User']], ['X Bad', 'X-Porthole-Identity', 'Authorization', '']);
  table(checkSshTarget, [['me@desk.example', 'me@desk.example']], ['-oProxyCommand=x', 'a b', 'bob;id@desk', '$(id)@desk', 'me@', 'me@-host']);
  table(
    checkPublicPath,
    [['/hooks/github', '/hooks/github'], ['/_portholes-not', '/_portholes-not']],
    ['hooks', '/', '/_porthole/api', '/_porthole', '/_port', '/_PORTHOLE/ui', '/a/../b', '/a//b', '/a?x=1'],
  );
});

test('ACME directory (https only) and contact address', () => {
  table(
    checkHttpsUrl,
    [['https://acme-v02.api.letsencrypt.org/directory', 'https://acme-v02.api.letsencrypt.org/directory'], ['https://127.0.0.1:14000/dir', 'https://127.0.0.1:14000/dir']],
    ['http://acme.example/directory', 'acme.example/directory', 'https://user:pw@acme.example/dir', 'ftp://x'],
  );
  table(checkEmail, [['ops@example.com', 'ops@example.com']], ['ops', 'ops@example', 'a b@example.com', 'mailto:ops@example.com', '<ops@example.com>']);
});
