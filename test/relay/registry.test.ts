// relay/registry: subdomain ↔ desk key bindings, persistence, lease expiry and hold-back.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isPortholeError, type ErrorCode } from '../../src/errors.js';
import {
  DEFAULT_HOLD_MS,
  DEFAULT_LEASE_MS,
  openRegistry,
  type RegistryOptions,
  SEEN_WRITE_INTERVAL_MS,
} from '../../src/relay/registry.js';
import { clock } from '../helpers/clock.js';

const posixOnly = process.platform === 'win32' ? 'POSIX modes only' : false;
const DAY = 24 * 60 * 60 * 1000;

/** A real Ed25519 public key, raw 32 bytes in base64url. */
function newKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return jwk.x!;
}
const A = newKey();
const B = newKey();

let root: string;
let n = 0;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'porthole-registry-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A fresh store directory and a clock; `open()` (re)opens the registry on it. */
function store(extra: Partial<RegistryOptions> = {}) {
  const dir = join(root, `store-${n++}`, 'relay');
  const c = clock();
  const open = () => openRegistry({ dir, now: c.now, ...extra });
  return { dir, file: join(dir, 'registry.json'), clock: c, open };
}

const code = (c: ErrorCode) => (err: unknown) => isPortholeError(err, c);

describe('claim', () => {
  test('no name requested → a random valid name; the same key gets it again, also after re-open', () => {
    const s = store();
    const reg = s.open();
    const first = reg.claim(A);
    assert.match(first.name, /^[a-z][a-z2-7]{9}$/);
    assert.equal(first.publicKey, A);
    s.clock.advance(1000);
    assert.equal(reg.claim(A).name, first.name);
    assert.equal(reg.claim(A, first.name.toUpperCase()).name, first.name);
    assert.equal(reg.size, 1);

    const again = s.open();
    const back = again.claim(A);
    assert.equal(back.name, first.name);
    assert.equal(back.createdAt, first.createdAt);
    assert.deepEqual(again.lookup(first.name)?.publicKey, A);
  });

  test('a requested name is validated and bound to the key; another key is refused', () => {
    const s = store();
    const reg = s.open();
    assert.equal(reg.claim(A, 'My-Desk').name, 'my-desk');
    assert.throws(
      () => reg.claim(B, 'my-desk'),
      (err: unknown) => isPortholeError(err, 'SUBDOMAIN_TAKEN') && err.status === 409 && !err.message.includes(A),
    );
    assert.throws(() => reg.claim(B, 'www'), code('SUBDOMAIN_INVALID'));
    assert.throws(() => reg.claim(B, 'xn--desk'), code('SUBDOMAIN_INVALID'));
    // B still gets a name of its own.
    assert.notEqual(reg.claim(B).name, 'my-desk');
    assert.equal(reg.size, 2);
    // After re-open (relay restart) the binding holds.
    assert.throws(() => s.open().claim(B, 'my-desk'), code('SUBDOMAIN_TAKEN'));
  });

  test('public keys are checked: 32 bytes, canonical unpadded base64url', () => {
    const reg = store().open();
    const bad = ['', 'x', A + '=', A.slice(1), Buffer.alloc(31).toString('base64url'), Buffer.alloc(33).toString('base64url'), A.replace(/.$/, '+')];
    // The 43rd character carries 4 bits and 2 zero bits; setting one decodes to the same
    // bytes, so two spellings would name one key: refused as not canonical.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    bad.push(A.slice(0, -1) + alphabet[alphabet.indexOf(A.at(-1)!) + 1]);
    for (const key of bad) {
      assert.throws(() => reg.claim(key), code('INVALID_ARGUMENT'), key);
      assert.throws(() => reg.release(key), code('INVALID_ARGUMENT'), key);
    }
    assert.equal(reg.size, 0);
  });

  test('asking for another name moves the key: the old name is held back for others', () => {
    const s = store();
    const reg = s.open();
    reg.claim(A, 'first');
    const moved = reg.claim(A, 'second');
    assert.equal(moved.name, 'second');
    assert.equal(reg.lookup('first'), undefined);
    assert.equal(reg.size, 1);
    assert.throws(() => reg.claim(B, 'first'), code('SUBDOMAIN_HELD'));
    // The same key may move back.
    assert.equal(reg.claim(A, 'first').name, 'first');
    assert.throws(() => reg.claim(B, 'second'), code('SUBDOMAIN_HELD'));
  });

  test('concurrent claims of one name by two keys: exactly one wins', async () => {
    const reg = store().open();
    const results = await Promise.allSettled(
      [A, B, A, B].map((key) => Promise.resolve().then(() => reg.claim(key, 'contested'))),
    );
    const winners = new Set(results.filter((r) => r.status === 'fulfilled').map((r) => r.value.publicKey));
    assert.equal(winners.size, 1);
    const loser = winners.has(A) ? B : A;
    const rejected = results.filter((r) => r.status === 'rejected');
    assert.equal(rejected.length, 2);
    for (const r of rejected) assert.ok(isPortholeError(r.reason, 'SUBDOMAIN_TAKEN'));
    assert.equal(reg.lookup('contested')?.publicKey, [...winners][0]);
    assert.notEqual(reg.lookup('contested')?.publicKey, loser);
  });
});

describe('release and hold-back', () => {
  test('release frees the name; others get SUBDOMAIN_HELD until holdMs, the same key may re-claim', () => {
    const s = store();
    const reg = s.open();
    reg.claim(A, 'desk');
    assert.equal(reg.release(A), 'desk');
    assert.equal(reg.release(A), undefined);
    assert.equal(reg.lookup('desk'), undefined);
    assert.equal(reg.size, 0);

    s.clock.advance(DEFAULT_HOLD_MS - 1);
    // Held across a relay restart too.
    const reopened = s.open();
    assert.throws(
      () => reopened.claim(B, 'DESK'),
      (err: unknown) => isPortholeError(err, 'SUBDOMAIN_HELD') && err.status === 409 && /held back until \d{4}-/.test(err.message),
    );
    // Released on purpose: an unrequested claim gives the key a new name, not the old one.
    const fresh = reopened.claim(A);
    assert.notEqual(fresh.name, 'desk');
    assert.equal(reopened.claim(A, 'desk').name, 'desk');
  });

  test('after holdMs another key may take a released name', () => {
    const s = store();
    const reg = s.open();
    reg.claim(A, 'desk');
    reg.release(A);
    s.clock.advance(DEFAULT_HOLD_MS);
    const taken = reg.claim(B, 'desk');
    assert.equal(taken.publicKey, B);
    assert.throws(() => reg.claim(A, 'desk'), code('SUBDOMAIN_TAKEN'));
  });

  test('holdMs is an option', () => {
    const s = store({ holdMs: 1000 });
    const reg = s.open();
    reg.claim(A, 'desk');
    reg.release(A);
    s.clock.advance(999);
    assert.throws(() => reg.claim(B, 'desk'), code('SUBDOMAIN_HELD'));
    s.clock.advance(1);
    assert.equal(reg.claim(B, 'desk').publicKey, B);
  });
});

describe('lease', () => {
  test('a name unseen for leaseMs is released, then held back; the same desk comes back to it', () => {
    const s = store();
    const reg = s.open();
    reg.claim(A, 'desk');
    s.clock.advance(DEFAULT_LEASE_MS - 1);
    reg.sweep();
    assert.equal(reg.lookup('desk')?.publicKey, A);
    s.clock.advance(1);
    reg.sweep();
    assert.equal(reg.lookup('desk'), undefined);
    assert.equal(reg.size, 0);
    assert.throws(() => reg.claim(B, 'desk'), code('SUBDOMAIN_HELD'));

    // The desk returns within the hold without asking by name: it gets its name back.
    s.clock.advance(DEFAULT_HOLD_MS - 1);
    const back = s.open().claim(A);
    assert.equal(back.name, 'desk');
  });

  test('lease expiry then hold-back, then the name is free for others', () => {
    const s = store();
    const reg = s.open();
    reg.claim(A, 'desk');
    s.clock.advance(DEFAULT_LEASE_MS + 5 * DAY); // no sweep ran meanwhile (relay down)
    // Expiry is applied on open; the hold counts from then.
    const later = s.open();
    assert.equal(later.lookup('desk'), undefined);
    s.clock.advance(DEFAULT_HOLD_MS - 1);
    assert.throws(() => later.claim(B, 'desk'), code('SUBDOMAIN_HELD'));
    s.clock.advance(1);
    assert.equal(later.claim(B, 'desk').publicKey, B);
    const file = JSON.parse(readFileSync(s.file, 'utf8'));
    assert.deepEqual(Object.keys(file.held), []);
  });

  test('touch keeps an online desk’s name; touches are written at most every few minutes', () => {
    const s = store({ leaseMs: 10 * 60_000 });
    const reg = s.open();
    const { createdAt } = reg.claim(A, 'desk');
    for (let i = 0; i < 12; i++) {
      s.clock.advance(60_000);
      reg.touch('DESK');
      reg.sweep();
    }
    assert.equal(reg.lookup('desk')?.lastSeenAt, createdAt + 12 * 60_000);
    const onDisk = () => JSON.parse(readFileSync(s.file, 'utf8')).names.desk.lastSeenAt as number;
    assert.ok(onDisk() > createdAt && createdAt + 12 * 60_000 - onDisk() < SEEN_WRITE_INTERVAL_MS);
    s.clock.advance(1000);
    reg.touch('desk');
    assert.notEqual(onDisk(), createdAt + 12 * 60_000 + 1000);
    reg.flush();
    assert.equal(onDisk(), createdAt + 12 * 60_000 + 1000);
    reg.touch('unknown-name'); // ignored
  });
});

describe('the file', () => {
  test('versioned JSON, 0600 in a 0700 directory, no temp files left', { skip: posixOnly }, () => {
    const s = store();
    const reg = s.open();
    const { name } = reg.claim(A);
    reg.claim(B, 'desk');
    reg.release(B);
    assert.equal(statSync(s.file).mode & 0o777, 0o600);
    assert.equal(statSync(s.dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(s.dir), ['registry.json']);
    const data = JSON.parse(readFileSync(s.file, 'utf8'));
    assert.equal(data.version, 1);
    assert.deepEqual(Object.keys(data.names), [name]);
    assert.equal(data.names[name].publicKey, A);
    assert.deepEqual(data.held.desk, { publicKey: B, releasedAt: s.clock.now(), reason: 'release' });
  });

  const corrupt: [string, string][] = [
    ['not JSON', '{"version":1,'],
    ['not an object', '[]'],
    ['another version', '{"version":2,"names":{},"held":{}}'],
    ['no names', '{"version":1,"held":{}}'],
    ['a bad key', `{"version":1,"names":{"desk":{"publicKey":"nope","createdAt":1,"lastSeenAt":1}},"held":{}}`],
    ['a bad time', `{"version":1,"names":{"desk":{"publicKey":"${A}","createdAt":"x","lastSeenAt":1}},"held":{}}`],
    ['an unknown field', `{"version":1,"names":{"desk":{"publicKey":"${A}","createdAt":1,"lastSeenAt":1,"x":1}},"held":{}}`],
    ['a bad name', `{"version":1,"names":{"-desk":{"publicKey":"${A}","createdAt":1,"lastSeenAt":1}},"held":{}}`],
    [
      'one key, two names',
      `{"version":1,"names":{"one":{"publicKey":"${A}","createdAt":1,"lastSeenAt":1},"two":{"publicKey":"${A}","createdAt":1,"lastSeenAt":1}},"held":{}}`,
    ],
    [
      'a name both live and held',
      `{"version":1,"names":{"desk":{"publicKey":"${A}","createdAt":1,"lastSeenAt":1}},"held":{"desk":{"publicKey":"${B}","releasedAt":1,"reason":"release"}}}`,
    ],
    ['a bad reason', `{"version":1,"names":{},"held":{"desk":{"publicKey":"${B}","releasedAt":1,"reason":"why"}}}`],
  ];
  for (const [what, text] of corrupt) {
    test(`a corrupt file (${what}) → CONFIG_INVALID naming the file, left untouched`, () => {
      const s = store();
      mkdirSync(s.dir, { recursive: true });
      writeFileSync(s.file, text);
      assert.throws(
        () => s.open(),
        (err: unknown) => isPortholeError(err, 'CONFIG_INVALID') && err.message.includes(s.file),
      );
      assert.equal(readFileSync(s.file, 'utf8'), text);
    });
  }

  test('all problems are reported as details', () => {
    const s = store();
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(s.file, `{"version":1,"names":{"desk":{"publicKey":"x","createdAt":-1,"lastSeenAt":1}},"held":{},"extra":0}`);
    assert.throws(
      () => s.open(),
      (err: unknown) => isPortholeError(err, 'CONFIG_INVALID') && err.details?.length === 3,
    );
  });

  test('a file replaced by another process is refused, not overwritten', () => {
    const s = store();
    const one = s.open();
    one.claim(A, 'desk');
    const two = s.open(); // a second relay on the same store
    two.claim(B, 'other');
    assert.throws(() => one.claim(B, 'third'), code('CONFIG_INVALID'));
    const data = JSON.parse(readFileSync(s.file, 'utf8'));
    assert.deepEqual(Object.keys(data.names).sort(), ['desk', 'other']);
    // The failed claim left the first registry's memory unchanged.
    assert.equal(one.lookup('third'), undefined);
  });

  test('bad options are refused', () => {
    assert.throws(() => openRegistry({ dir: '' }), code('INVALID_ARGUMENT'));
    assert.throws(() => openRegistry({ dir: join(root, 'x'), leaseMs: 0 }), code('INVALID_ARGUMENT'));
    assert.throws(() => openRegistry({ dir: join(root, 'x'), holdMs: Number.NaN }), code('INVALID_ARGUMENT'));
  });
});
