// Table tests for the target shorthand parser (src/gateway/target.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { describeTarget, parseTarget } from '../../src/gateway/target.js';

describe('parseTarget', () => {
  const good: [string, string][] = [
    ['3000', 'http://127.0.0.1:3000'],
    [':3000', 'http://127.0.0.1:3000'],
    ['1', 'http://127.0.0.1:1'],
    ['65535', 'http://127.0.0.1:65535'],
    ['localhost:3000', 'http://localhost:3000'],
    ['127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['[::1]:3000', 'http://[::1]:3000'],
    ['app.internal:8080', 'http://app.internal:8080'],
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['http://127.0.0.1:3000/', 'http://127.0.0.1:3000'],
    ['http://127.0.0.1:3000/app', 'http://127.0.0.1:3000/app'],
    ['http://127.0.0.1:3000/app/', 'http://127.0.0.1:3000/app'],
    ['http://[::1]:3000/a/b', 'http://[::1]:3000/a/b'],
    ['https://Example.COM', 'https://example.com'],
    ['HTTPS://example.com:8443/base', 'https://example.com:8443/base'],
    ['http://localhost:80', 'http://localhost'],
    ['unix:/run/app.sock', 'unix:/run/app.sock'],
    ['unix:/tmp/dir with/../x.sock'.replace(' ', '_'), 'unix:/tmp/dir_with/../x.sock'],
  ];
  for (const [input, described] of good) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      assert.equal(describeTarget(parseTarget(input)), described);
    });
  }

  it('returns the parts the proxy uses', () => {
    const t = parseTarget('http://127.0.0.1:3000/app/');
    assert.equal(t.kind, 'http');
    if (t.kind !== 'http') return;
    assert.equal(t.url.protocol, 'http:');
    assert.equal(t.url.host, '127.0.0.1:3000');
    assert.equal(t.url.pathname, '/app');
    const v6 = parseTarget('[::1]:3000');
    assert.ok(v6.kind === 'http' && v6.url.hostname === '[::1]' && v6.url.port === '3000');
    assert.deepEqual(parseTarget('unix:/run/app.sock'), { kind: 'unix', path: '/run/app.sock' });
  });

  const bad: [string, string][] = [
    ['', 'empty'],
    ['0', 'port 0'],
    [':0', 'port 0'],
    ['65536', 'port > 65535'],
    ['99999', 'port > 65535'],
    ['123456', 'too many digits'],
    ['localhost', 'host without port'],
    ['localhost:', 'empty port'],
    ['localhost:0', 'port 0'],
    ['[::1]', 'bracketed host without port'],
    ['::1:3000', 'unbracketed IPv6'],
    ['a:b:3000', 'two colons'],
    ['localhost:3000/app', 'shorthand with a path'],
    [' 3000', 'leading space'],
    ['3000\n', 'trailing newline'],
    ['http://h\t:1', 'tab'],
    ['ftp://host:21', 'other scheme'],
    ['ws://host:80', 'ws scheme'],
    ['file:///etc/passwd', 'file scheme'],
    ['http:3000', 'scheme without //'],
    ['http://', 'no host'],
    ['http:///app', 'empty authority'],
    ['http://h:0', 'port 0 in URL'],
    ['http://h:65536', 'port > 65535 in URL'],
    ['http://user:secret@h:1/', 'credentials'],
    ['http://user@h:1/', 'user only'],
    ['http://h:1/?x=1', 'query'],
    ['http://h:1/?', 'empty query'],
    ['http://h:1/#frag', 'fragment'],
    ['unix:', 'empty unix path'],
    ['unix:relative.sock', 'relative unix path'],
    ['unix:./x.sock', 'relative unix path'],
    ['unix:/run/\0x', 'NUL in unix path'],
  ];
  for (const [input, why] of bad) {
    it(`refuses ${JSON.stringify(input)} (${why})`, () => {
      assert.throws(
        () => parseTarget(input),
        (err: unknown) => {
          assert.ok(isPortholeError(err, 'TARGET_INVALID'), String(err));
          assert.equal(err.code, 'TARGET_INVALID');
          assert.match(err.message, /accepted forms: 3000, :3000/);
          return true;
        },
      );
    });
  }

  it('names the input in the message but masks credentials', () => {
    assert.throws(() => parseTarget('gopher://x'), /invalid target "gopher:\/\/x"/);
    assert.throws(
      () => parseTarget('http://admin:hunter2@h:1/'),
      (err: Error) => !err.message.includes('hunter2') && err.message.includes('http://***@h:1/'),
    );
  });
});
