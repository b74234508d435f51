// gateway/token-keeper: the per-request token check (a copy into a buffer of the token's
// length, compared in constant time) must accept exactly the token, and tell a rotated token
// ("stale", not a guess) from a wrong one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createTokenKeeper } from '../../src/gateway/token-keeper.js';
import { statePaths } from '../../src/secrets/paths.js';
import { createFileSecretStore, resolveToken } from '../../src/secrets/store.js';
import { generateToken } from '../../src/secrets/token.js';

const root = mkdtempSync(join(tmpdir(), 'porthole-keeper-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('token check', () => {
  const token = generateToken();
  const keeper = createTokenKeeper({ token, source: 'flag', generated: false, describe: '--auth-token' }, undefined, undefined);

  test('the token itself is ok, every near miss is wrong', () => {
    assert.equal(keeper.check(token), 'ok');
    assert.equal(keeper.check(`${token}`.slice(0)), 'ok');
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const misses = [
      '',
      'ph_',
      token.slice(0, -1), // one short: a prefix of the token
      `${token}A`, // one long: the token is its prefix
      `${token}${token}`,
      token.slice(0, -1) + last, // same length, last character differs
      last + token.slice(1), // same length, first character differs
      token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(),
      // Same UTF-16 length, a non-ASCII last character whose UTF-8 does not fit the buffer.
      `${token.slice(0, -1)}é`,
      // Same UTF-16 length, a character above U+00FF whose low byte is the token's last
      // character: a latin1 copy would truncate it to that byte.
      token.slice(0, -1) + String.fromCharCode(0x100 | token.charCodeAt(token.length - 1)),
      // A shorter string whose UTF-8 is exactly as long as the token.
      `${token.slice(0, -2)}é`,
    ];
    for (const m of misses) assert.equal(keeper.check(m), 'wrong', JSON.stringify(m));
    // A miss does not disturb the next check (the comparison buffer is reused).
    assert.equal(keeper.check(token), 'ok');
    assert.equal(keeper.check(token.slice(0, -3)), 'wrong');
    assert.equal(keeper.check(token), 'ok');
  });

  test('a rotated token is stale, the new one ok, a guess still wrong', () => {
    const paths = statePaths(join(root, 'home'));
    const store = createFileSecretStore(paths.secretsDir);
    const resolved = resolveToken({ paths, store, env: {}, create: true });
    const k = createTokenKeeper(resolved, paths, store);
    const old = resolved.token;
    assert.equal(k.check(old), 'ok');
    k.rotate();
    const fresh = k.reveal();
    assert.notEqual(fresh, old);
    assert.equal(k.check(fresh), 'ok');
    assert.equal(k.check(old), 'stale');
    assert.equal(k.check(generateToken()), 'wrong');
    // A keeper started later reads the retired digests from state: still stale.
    const again = createTokenKeeper(resolveToken({ paths, store, env: {}, create: false }), paths, store);
    assert.equal(again.check(old), 'stale');
    assert.equal(again.check(fresh), 'ok');
  });
});
