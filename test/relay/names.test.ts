// relay/names: the subdomain grammar, reserved names, random names and SNI/Host matching.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { matchDomain, RESERVED, randomSubdomain, validateSubdomain } from '../../src/relay/names.js';

describe('validateSubdomain', () => {
  const good: [string, string][] = [
    ['desk', 'desk'],
    ['my-desk-2', 'my-desk-2'],
    ['abc', 'abc'],
    ['123', '123'],
    ['Desk', 'desk'],
    ['MY-DESK', 'my-desk'],
    ['a'.repeat(63), 'a'.repeat(63)],
    ['a-b--c', 'a-b--c'], // "--" elsewhere than the 3rd–4th place is fine
  ];
  for (const [input, expected] of good) {
    test(`accepts ${JSON.stringify(input)} → ${expected}`, () => {
      assert.equal(validateSubdomain(input), expected);
    });
  }

  const bad: [string, string, RegExp][] = [
    ['empty', '', /empty/],
    ['too short', 'ab', /shorter than 3/],
    ['too long', 'a'.repeat(64), /longer than 63/],
    ['leading -', '-desk', /start or end with "-"/],
    ['trailing -', 'desk-', /start or end with "-"/],
    ['xn-- (punycode)', 'xn--80ak6aa92e', /xn--/],
    ['XN-- folded', 'XN--abc', /xn--/],
    ['other R-LDH label', 'ab--cd', /3rd and 4th/],
    ['dot', 'a.desk', /dot/],
    ['trailing dot', 'desk.', /dot/],
    ['underscore', 'my_desk', /a-z/],
    ['space', 'my desk', /a-z/],
    ['slash', 'desk/x', /a-z/],
    ['unicode letter', 'déjà', /outside ASCII/],
    ['Cyrillic look-alike', 'аpple', /outside ASCII/],
    ['KELVIN SIGN folds to k', 'des\u212A', /outside ASCII/],
    ['fullwidth', 'ｄｅｓｋ', /outside ASCII/],
    ['NUL', 'desk\0', /outside ASCII/],
    ['reserved www', 'www', /reserved/],
    ['reserved, upper case', 'ADMIN', /reserved/],
    ['reserved wpad', 'wpad', /reserved/],
    ['reserved autodiscover', 'autodiscover', /reserved/],
    ['reserved localhost', 'localhost', /reserved/],
    ['_acme-challenge', '_acme-challenge', /a-z/],
  ];
  for (const [what, input, rule] of bad) {
    test(`refuses ${what}`, () => {
      assert.throws(
        () => validateSubdomain(input),
        (err: unknown) => isPortholeError(err, 'SUBDOMAIN_INVALID') && err.status === 400 && rule.test(err.message),
      );
    });
  }

  test('every reserved name is refused, and the list is lower case', () => {
    for (const name of RESERVED) {
      assert.equal(name, name.toLowerCase());
      assert.throws(() => validateSubdomain(name), (err: unknown) => isPortholeError(err, 'SUBDOMAIN_INVALID'), name);
    }
    for (const name of ['www', 'api', 'admin', 'relay', 'mail', 'ftp', 'ns', 'ns1', 'ns2', 'localhost', 'root', 'status']) {
      assert.ok(RESERVED.has(name), name);
    }
  });

  test('a very long input is truncated in the message', () => {
    assert.throws(
      () => validateSubdomain('x'.repeat(10_000)),
      (err: unknown) => isPortholeError(err, 'SUBDOMAIN_INVALID') && err.message.length < 200,
    );
  });
});

describe('randomSubdomain', () => {
  test('a letter then 9 base32 characters, valid, unique over 10k', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const name = randomSubdomain();
      assert.match(name, /^[a-z][a-z2-7]{9}$/);
      assert.equal(validateSubdomain(name), name);
      seen.add(name);
    }
    assert.equal(seen.size, 10_000);
  });

  test('uses the whole alphabet (not a biased subset)', () => {
    const chars = new Set<string>();
    for (let i = 0; i < 2000; i++) for (const c of randomSubdomain().slice(1)) chars.add(c);
    assert.equal(chars.size, 32);
  });
});

describe('matchDomain', () => {
  const domain = 'tunnel.example.test';
  const cases: [string, ReturnType<typeof matchDomain>][] = [
    ['tunnel.example.test', { kind: 'apex' }],
    ['Tunnel.Example.TEST', { kind: 'apex' }],
    ['tunnel.example.test.', { kind: 'apex' }],
    ['desk.tunnel.example.test', { kind: 'sub', name: 'desk' }],
    ['Desk.Tunnel.Example.Test', { kind: 'sub', name: 'desk' }],
    ['desk.tunnel.example.test.', { kind: 'sub', name: 'desk' }],
    ['www.tunnel.example.test', { kind: 'sub', name: 'www' }], // lookup refuses it, not the matcher
    ['desk.tunnel.example.test..', undefined],
    ['a.desk.tunnel.example.test', undefined],
    ['.tunnel.example.test', undefined],
    ['desk..tunnel.example.test', undefined],
    ['evil-tunnel.example.test', undefined],
    ['eviltunnel.example.test', undefined],
    ['desk.evil-tunnel.example.test', undefined],
    ['tunnel.example.test.evil.test', undefined],
    ['example.test', undefined],
    ['other.test', undefined],
    ['', undefined],
    ['.', undefined],
    ['desk_x.tunnel.example.test', undefined],
    ['dÉsk.tunnel.example.test', undefined],
    ['desk.tunnel.example.test:443', undefined], // callers strip a Host header's port
    [`${'a'.repeat(64)}.tunnel.example.test`, undefined],
  ];
  for (const [host, expected] of cases) {
    test(`${JSON.stringify(host)} → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(matchDomain(host, domain), expected);
    });
  }

  test('the domain is case-folded and may carry a trailing dot', () => {
    assert.deepEqual(matchDomain('desk.tunnel.example.test', 'Tunnel.Example.Test.'), { kind: 'sub', name: 'desk' });
  });

  test('an empty or malformed domain is a programming error', () => {
    for (const bad of ['', '.', 'a..b']) {
      assert.throws(() => matchDomain('desk', bad), (err: unknown) => isPortholeError(err, 'INVALID_ARGUMENT'), bad);
    }
  });
});
