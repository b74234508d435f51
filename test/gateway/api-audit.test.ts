// The audit log as the API reads it (src/gateway/api/audit.ts): newest first, from the end
// of the file in blocks (lines crossing block edges included), bad lines skipped, the limit
// checked; and the registration secret's masked form (src/gateway/api/tunnel-secret.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { AUDIT_DEFAULT_LIMIT, parseAuditLimit, readAuditTail } from '../../src/gateway/api/audit.js';
import { checkRegistrationSecret, createRegistrationSecretAccess, maskSecret } from '../../src/gateway/api/tunnel-secret.js';
import { statePaths } from '../../src/secrets/paths.js';
import { createFileSecretStore } from '../../src/secrets/store.js';
import { isPortholeError } from '../../src/errors.js';
import { appendAudit } from '../../src/util/audit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-audit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('audit log tail', () => {
  test('no log yet: no entries', () => {
    assert.deepEqual(readAuditTail(path.join(dir, 'none.log'), 10), []);
  });

  test('newest first, across 64 KiB block edges, up to the limit', () => {
    const file = path.join(dir, 'big.log');
    // ~200 bytes a line, 3000 lines: about 9 blocks, so many lines straddle a block edge.
    for (let i = 0; i < 3000; i++) appendAudit(file, 'event', { n: i, pad: 'x'.repeat(150 + (i % 37)) });
    const all = readAuditTail(file, 500);
    assert.equal(all.length, 500);
    assert.deepEqual(
      all.map((e) => e['n']),
      Array.from({ length: 500 }, (_, i) => 2999 - i),
    );
    assert.equal(readAuditTail(file, 1)[0]!['n'], 2999);
    assert.equal(all[0]!['event'], 'event');
    assert.match(String(all[0]!['ts']), /^\d{4}-\d\d-\d\dT/);
  });

  test('the whole of a small log, bad lines skipped', () => {
    const file = path.join(dir, 'small.log');
    appendAudit(file, 'first');
    fs.appendFileSync(file, 'not json\n[1,2]\n\n');
    appendAudit(file, 'second', { relay: null });
    fs.appendFileSync(file, '{"ts":"x","event":"partial"'); // a line still being written
    assert.deepEqual(
      readAuditTail(file, 100).map((e) => e['event']),
      ['second', 'first'],
    );
  });

  test('limit: default 100, 1…500, anything else refused', () => {
    assert.equal(parseAuditLimit(null), AUDIT_DEFAULT_LIMIT);
    assert.equal(parseAuditLimit('500'), 500);
    assert.equal(parseAuditLimit('1'), 1);
    for (const bad of ['0', '501', '-1', '1.5', 'ten', '99999']) {
      assert.throws(() => parseAuditLimit(bad), (e) => isPortholeError(e, 'BAD_REQUEST') && e.status === 400, bad);
    }
  });
});

describe('registration secret', () => {
  test('masked: first and last 2 characters, only from 16 characters on', () => {
    assert.equal(maskSecret('abcdefghijklmnopqrstuvwxyz'), 'ab…yz');
    assert.equal(maskSecret('0123456789abcdef'), '01…ef');
    assert.equal(maskSecret('short-secret'), null);
    assert.equal(maskSecret(undefined), null);
  });

  test('16 to 1024 printable characters without whitespace', () => {
    assert.equal(checkRegistrationSecret('0123456789abcdef'), '0123456789abcdef');
    for (const bad of ['short', '0123456789abcde f', `${'a'.repeat(16)}\n`, 'é'.repeat(20), 'a'.repeat(1025), 42, undefined]) {
      assert.throws(() => checkRegistrationSecret(bad), (e) => isPortholeError(e, 'INVALID_ARGUMENT'));
    }
  });
});

describe('registration secret status', () => {
  test('the store is read once, not per request; a set through the API shows at once', () => {
    const paths = statePaths(path.join(dir, 'secret-home'));
    const store = createFileSecretStore(paths.secretsDir);
    const access = createRegistrationSecretAccess({ store, env: {}, paths });
    assert.deepEqual(access.info(), { set: false, source: 'dev-default', masked: null });
    // Written behind the API's back (only `secret set` with no gateway running does that): not read again.
    store.set('tunnel-registration-secret', 'aa-written-directly-zz');
    assert.equal(access.info().source, 'dev-default');
    assert.deepEqual(access.set('bb-through-the-api-yy'), { set: true, source: 'store', masked: 'bb…yy' });
    assert.equal(access.info().masked, 'bb…yy');
    // The environment wins, and is never cached.
    const fromEnv = createRegistrationSecretAccess({ store, env: { PORTHOLE_TUNNEL_REGISTRATION_SECRET: 'cc-from-the-env-xx' }, paths });
    assert.deepEqual(fromEnv.info(), { set: true, source: 'env', masked: 'cc…xx' });
  });
});
