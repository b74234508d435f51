// secrets/token: formats, validation of supplied tokens (never echoing them), comparison.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import {
  digest,
  generateCode,
  generateToken,
  isPortholeCode,
  isPortholeToken,
  secretEquals,
  validateSuppliedToken,
} from '../../src/secrets/token.js';

describe('generation', () => {
  test('tokens are ph_ + 43 base64url chars and unique', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const t = generateToken();
      assert.match(t, /^ph_[A-Za-z0-9_-]{43}$/);
      assert.ok(isPortholeToken(t));
      assert.ok(!isPortholeCode(t));
      seen.add(t);
    }
    assert.equal(seen.size, 200);
  });

  test('codes are phc_ + 43 base64url chars and not tokens', () => {
    const c = generateCode();
    assert.match(c, /^phc_[A-Za-z0-9_-]{43}$/);
    assert.ok(isPortholeCode(c));
    assert.ok(!isPortholeToken(c));
    assert.notEqual(generateCode(), c);
  });

  test('generated tokens pass validation', () => {
    const t = generateToken();
    assert.equal(validateSuppliedToken(t, '--auth-token'), t);
  });
});

describe('validateSuppliedToken', () => {
  const body32 = 'A'.repeat(30) + '_-';
  test('accepts ph_ + 32 or more base64url chars', () => {
    assert.equal(validateSuppliedToken('ph_' + body32, 'x'), 'ph_' + body32);
    assert.doesNotThrow(() => validateSuppliedToken('ph_' + 'z9'.repeat(40), 'x'));
  });

  const bad: Array<[string, string]> = [
    ['short', 'ph_Short0123456789abcdefghijklmn'], // 31 chars after prefix
    ['unprefixed', 'Zk' + body32],
    ['code prefix', 'phc_' + body32],
    ['bad chars', 'ph_' + body32 + '+/='],
    ['space', 'ph_' + body32 + ' '],
    ['newline', 'ph_' + body32 + '\n'],
    ['empty', ''],
    ['prefix only', 'ph_'],
  ];
  for (const [name, token] of bad) {
    test(`rejects ${name} with TOKEN_WEAK, naming the source but never the token`, () => {
      assert.throws(
        () => validateSuppliedToken(token, 'PORTHOLE_AUTH_TOKEN'),
        (err: unknown) => {
          assert.ok(isPortholeError(err, 'TOKEN_WEAK'));
          assert.ok(err.message.includes('PORTHOLE_AUTH_TOKEN'));
          assert.ok(err.message.includes('porthole init'));
          assert.ok(err.message.includes("randomBytes(32).toString('base64url')"));
          if (token.length > 3) assert.ok(!err.message.includes(token.trim()), 'message contains the token');
          assert.ok(!err.message.includes(body32), 'message contains the token body');
          return true;
        },
      );
    });
  }
});

describe('comparison', () => {
  test('digest is SHA-256', () => {
    assert.equal(digest('abc').toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  test('secretEquals compares content at any lengths', () => {
    const t = generateToken();
    assert.equal(secretEquals(t, t.slice()), true);
    assert.equal(secretEquals(t, t + 'x'), false);
    assert.equal(secretEquals(t, ''), false);
    assert.equal(secretEquals('', ''), true);
    assert.equal(secretEquals('ph_a', 'ph_b'), false);
  });
});
