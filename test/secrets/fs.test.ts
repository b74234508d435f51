// util/fs: atomic writes, secret-file permission checks and private directories.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { ensureDir, ensureOwnedPrivateDir, readSecretFile, writeFileAtomic } from '../../src/util/fs.js';

const posixOnly = process.platform === 'win32' ? 'POSIX modes only' : false;
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'porthole-fs-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;

describe('writeFileAtomic', () => {
  test('writes 0600 by default, creates the directory, leaves no temp files', { skip: posixOnly }, () => {
    const file = join(dir, 'atomic', 'nested', 'a.txt');
    writeFileAtomic(file, 'one');
    writeFileAtomic(file, new TextEncoder().encode('two'));
    assert.equal(readFileSync(file, 'utf8'), 'two');
    assert.equal(mode(file), 0o600);
    assert.equal(mode(join(dir, 'atomic', 'nested')), 0o700);
    assert.deepEqual(readdirSync(join(dir, 'atomic', 'nested')), ['a.txt']);
  });

  test('applies the given mode exactly, replacing a looser existing file', { skip: posixOnly }, () => {
    const file = join(dir, 'mode.txt');
    writeFileSync(file, 'old', { mode: 0o666 });
    chmodSync(file, 0o666);
    writeFileAtomic(file, 'new');
    assert.equal(mode(file), 0o600);
    writeFileAtomic(file, 'public', { mode: 0o644 });
    assert.equal(mode(file), 0o644);
  });

  test('dirMode tightens an existing directory we own', { skip: posixOnly }, () => {
    const sub = join(dir, 'loose');
    mkdirSync(sub, { mode: 0o755 });
    chmodSync(sub, 0o755);
    writeFileAtomic(join(sub, 'x'), 'x', { dirMode: 0o700 });
    assert.equal(mode(sub), 0o700);
  });

  test('a failed write removes its temp file', () => {
    const target = join(dir, 'is-a-dir');
    mkdirSync(join(target, 'child'), { recursive: true });
    assert.throws(() => writeFileAtomic(target, 'x'));
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
    );
  });
});

describe('readSecretFile', () => {
  test('reads a 0600 file and trims one trailing newline', () => {
    const file = join(dir, 'secret-ok');
    writeFileSync(file, 'value\n\n', { mode: 0o600 });
    assert.equal(readSecretFile(file), 'value\n');
    writeFileSync(file, 'crlf\r\n');
    assert.equal(readSecretFile(file), 'crlf');
  });

  test('missing file → undefined', () => {
    assert.equal(readSecretFile(join(dir, 'nope')), undefined);
  });

  test('refuses a 0644 file, naming file, mode and fix but not the content', { skip: posixOnly }, () => {
    const file = join(dir, 'secret-open');
    writeFileSync(file, 'ph_supersecretcontent\n');
    chmodSync(file, 0o644);
    assert.throws(
      () => readSecretFile(file),
      (err: unknown) => {
        assert.ok(isPortholeError(err));
        assert.equal(err.code, 'SECRET_FILE_INSECURE');
        assert.ok(err.message.includes(file));
        assert.ok(err.message.includes('0644'));
        assert.ok(err.message.includes(`chmod 600 ${file}`));
        assert.ok(!err.message.includes('supersecret'));
        return true;
      },
    );
  });

  test('refuses group-only permissions too (0640, 0620)', { skip: posixOnly }, () => {
    const file = join(dir, 'secret-group');
    writeFileSync(file, 'x');
    for (const m of [0o640, 0o620, 0o604]) {
      chmodSync(file, m);
      assert.throws(() => readSecretFile(file), { code: 'SECRET_FILE_INSECURE' });
    }
  });

  test('a directory is SECRET_FILE_UNREADABLE, naming it', () => {
    const sub = join(dir, 'secret-dir');
    mkdirSync(sub, { mode: 0o700 });
    assert.throws(() => readSecretFile(sub), (err: unknown) => {
      assert.ok(isPortholeError(err, 'SECRET_FILE_UNREADABLE'));
      assert.ok(err.message.includes(sub));
      return true;
    });
  });

  test('a device is SECRET_FILE_UNREADABLE', { skip: posixOnly }, () => {
    assert.throws(() => readSecretFile('/dev/null'), { code: 'SECRET_FILE_UNREADABLE' });
  });

  const hasMkfifo = !posixOnly && spawnSync('mkfifo', ['--version']).error === undefined;
  test('reads from a private pipe (like --auth-token-file <(cmd))', {
    skip: hasMkfifo ? false : 'mkfifo not available',
  }, async () => {
    const fifo = join(dir, 'fifo');
    assert.equal(spawnSync('mkfifo', ['-m', '600', fifo]).status, 0);
    const writer = spawn('sh', ['-c', 'printf "piped\\n" > "$1"', 'sh', fifo], { stdio: 'ignore' });
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    assert.equal(readSecretFile(fifo), 'piped');
    await exited;
  });

  test('an unreadable file is SECRET_FILE_UNREADABLE', { skip: posixOnly || process.getuid?.() === 0 ? 'root reads anything' : false }, () => {
    const file = join(dir, 'secret-noread');
    writeFileSync(file, 'x');
    chmodSync(file, 0o000);
    assert.throws(() => readSecretFile(file), { code: 'SECRET_FILE_UNREADABLE' });
  });
});

describe('ensureDir', () => {
  test('creates with the mode and re-tightens an existing directory', { skip: posixOnly }, () => {
    const run = join(dir, 'home1', 'run');
    ensureDir(run, 0o700);
    assert.equal(mode(run), 0o700);
    chmodSync(run, 0o755);
    ensureDir(run, 0o700);
    assert.equal(mode(run), 0o700);
  });
});

describe('ensureOwnedPrivateDir', { skip: posixOnly }, () => {
  test('creates a 0700 directory and accepts it again', () => {
    const p = join(dir, 'private', 'porthole-1');
    ensureOwnedPrivateDir(p);
    assert.equal(mode(p), 0o700);
    ensureOwnedPrivateDir(p);
  });

  test('refuses an existing 0755 directory without changing it', () => {
    const p = join(dir, 'open-dir');
    mkdirSync(p);
    chmodSync(p, 0o755);
    assert.throws(() => ensureOwnedPrivateDir(p), (err: unknown) => {
      assert.ok(isPortholeError(err, 'STATE_DIR_INSECURE'));
      assert.ok(err.message.includes(p));
      return true;
    });
    assert.equal(mode(p), 0o755);
  });

  test('refuses a symlink, even to a private directory', () => {
    const real = join(dir, 'real-private');
    mkdirSync(real, { mode: 0o700 });
    const link = join(dir, 'link-private');
    symlinkSync(real, link);
    assert.throws(() => ensureOwnedPrivateDir(link), { code: 'STATE_DIR_INSECURE' });
  });

  test('refuses a regular file', () => {
    const p = join(dir, 'plain-file');
    writeFileSync(p, '');
    assert.throws(() => ensureOwnedPrivateDir(p), { code: 'STATE_DIR_INSECURE' });
  });

  test('refuses a directory owned by someone else', {
    skip: process.getuid?.() === 0 ? false : 'needs root to create a directory owned by another user',
  }, () => {
    const p = join(dir, 'foreign');
    mkdirSync(p, { mode: 0o700 });
    chownSync(p, 65534, 65534);
    assert.throws(() => ensureOwnedPrivateDir(p), (err: unknown) => {
      assert.ok(isPortholeError(err, 'STATE_DIR_INSECURE'));
      assert.ok(err.message.includes('65534'));
      return true;
    });
  });
});
