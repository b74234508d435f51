// File-system helpers for porthole's state: atomic writes, reading secret files with a
// permission check, and private directories. Sync on purpose: used at start-up and for
// rare writes, where ordering matters more than throughput.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PortholeError } from '../errors.js';

const isWindows = process.platform === 'win32';

/** `0o644` → `"0644"`, as `ls -l` users read it. */
export function formatMode(mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0');
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export interface WriteFileAtomicOptions {
  /** Mode of the written file, applied exactly (umask does not widen or narrow it). Default 0o600. */
  mode?: number;
  /**
   * Mode of the containing directory. When given, the directory is created with it and,
   * if it exists and we own it, chmodded to it (see ensureDir). When omitted, a missing
   * directory is created 0700 and an existing one is left as is.
   */
  dirMode?: number;
}

/**
 * Writes `data` to `path` so that readers see either the old or the new content, never a
 * torn file: temp file in the same directory (random suffix, `wx`, given mode) + fsync +
 * rename. The directory is created if missing.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): void {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  if (options.dirMode !== undefined) ensureDir(dir, options.dirMode);
  else mkdirSync(dir, { recursive: true, mode: 0o700 });

  // Same directory, so rename() stays on one file system and is atomic.
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx' refuses to follow a planted file or symlink at the temp name.
  let fd: number | undefined = openSync(tmp, 'wx', mode);
  try {
    // open() applies the umask; set the mode exactly so a 0600 promise holds everywhere.
    if (!isWindows) fchmodSync(fd, mode);
    writeFileSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeQuietly(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // Already renamed or never created: nothing to clean up.
    }
    throw err;
  }
  fsyncDir(dir);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The original error matters more than a failed close.
  }
}

/** Persists the rename itself; best effort because some platforms cannot fsync a directory. */
function fsyncDir(dir: string): void {
  if (isWindows) return;
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Durability of the directory entry is a bonus, not a correctness requirement.
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

/**
 * Reads a file that holds a secret. Returns undefined when it does not exist. Refuses
 * (SECRET_FILE_INSECURE) a file that grants any group/other permission on POSIX — a
 * secret others can read is already leaked, and one they can write can be swapped.
 * Any other failure is SECRET_FILE_UNREADABLE. Trims a single trailing newline (`echo`
 * and editors add one). Messages name the file, never its content.
 */
export function readSecretFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw unreadable(path, err);
  }
  try {
    // fstat the descriptor we read from, so the file checked is the file read.
    const st = fstatSync(fd);
    // A pipe is allowed so `--auth-token-file <(pass show x)` keeps the token off disk and argv;
    // devices and directories are not (reading /dev/zero would never end).
    if (!st.isFile() && !st.isFIFO()) {
      throw new PortholeError('SECRET_FILE_UNREADABLE', `Secret file ${path} is not a regular file.`);
    }
    if (!isWindows && (st.mode & 0o077) !== 0) {
      throw new PortholeError(
        'SECRET_FILE_INSECURE',
        `Secret file ${path} has mode ${formatMode(st.mode)}, which lets other users access it. ` +
          `Restrict it with: chmod 600 ${path}`,
      );
    }
    let text: string;
    try {
      text = readFileSync(fd, 'utf8');
    } catch (err) {
      throw unreadable(path, err);
    }
    return text.replace(/\r?\n$/, '');
  } finally {
    closeQuietly(fd);
  }
}

function unreadable(path: string, err: unknown): PortholeError {
  const code = errnoCode(err);
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? 'unknown error');
  return new PortholeError('SECRET_FILE_UNREADABLE', `Cannot read secret file ${path}: ${why}.`, {
    cause: err,
  });
}

/**
 * mkdir -p with `mode`. If the directory exists and we own it, it is chmodded to `mode`, so
 * a directory like run/ is always exactly 0700 even if someone loosened it. On Windows the
 * mode is not meaningful and only the mkdir happens.
 */
export function ensureDir(path: string, mode: number): void {
  mkdirSync(path, { recursive: true, mode });
  if (isWindows) return;
  const st = statSync(path);
  if (st.uid === process.getuid?.() && (st.mode & 0o777) !== mode) chmodSync(path, mode);
}

/**
 * Creates `path` 0700, or accepts it if it already exists as a real directory owned by the
 * current user with no group/other permission. Anything else is STATE_DIR_INSECURE: in a
 * shared directory such as /tmp another user could have created it first (or planted a
 * symlink) to intercept what we put inside, so it is refused rather than repaired.
 * On Windows there are no such modes; the directory is only created.
 */
export function ensureOwnedPrivateDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') mkdirSync(path, { recursive: true, mode: 0o700 });
    else if (code !== 'EEXIST') throw err;
  }
  if (isWindows) return;
  // lstat, and check after creating: whatever is there now is what we will use.
  const st = lstatSync(path);
  const fix = `Remove it (rm -rf ${path}) so porthole can recreate it, or choose another location.`;
  if (st.isSymbolicLink()) {
    throw new PortholeError('STATE_DIR_INSECURE', `${path} is a symbolic link, not a private directory. ${fix}`);
  }
  if (!st.isDirectory()) {
    throw new PortholeError('STATE_DIR_INSECURE', `${path} is not a directory. ${fix}`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new PortholeError(
      'STATE_DIR_INSECURE',
      `${path} is owned by uid ${st.uid}, not by the current user (uid ${uid}). ${fix}`,
    );
  }
  if ((st.mode & 0o077) !== 0) {
    throw new PortholeError(
      'STATE_DIR_INSECURE',
      `${path} has mode ${formatMode(st.mode)}, which lets other users access it. ` +
        `Restrict it with: chmod 700 ${path}`,
    );
  }
}
