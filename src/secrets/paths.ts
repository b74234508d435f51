// Where porthole keeps its state (DESIGN §5): the home directory and the files in it,
// including the gateway's local socket, which falls back to a short path when the home is
// too deep for a Unix socket address.
import { createHash } from 'node:crypto';
import { homedir as osHomedir, tmpdir as osTmpdir } from 'node:os';
import { posix, win32 } from 'node:path';
import { PortholeError } from '../errors.js';
import { ensureDir, ensureOwnedPrivateDir } from '../util/fs.js';

export interface StatePaths {
  home: string;
  /** porthole.toml — configuration, never secrets. */
  configFile: string;
  /** secrets/ — one 0600 file per secret (file store). */
  secretsDir: string;
  /** secrets/token — the gateway token when the file store holds it. */
  tokenFile: string;
  /** identity/ — the desk's Ed25519 key. */
  identityDir: string;
  /** acme/ — 0700: the ACME account key and the tunnel certificates obtained with it (keys 0600). */
  acmeDir: string;
  devicesFile: string;
  auditLog: string;
  /** run/ — 0700, holds the gateway socket unless the fallback is used. */
  runDir: string;
  /** Unix socket (or Windows named pipe) of the running gateway. See statePaths. */
  socketPath: string;
  stateFile: string;
  sessionsFile: string;
}

export const DEFAULT_APP_NAME = 'porthole';
const APP_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/**
 * sun_path holds 108 bytes on Linux and 104 on macOS, including the NUL; 100 leaves a
 * margin and one rule for both.
 */
export const MAX_SOCKET_PATH_BYTES = 100;

export interface ResolveHomeOptions {
  /** Explicit state directory; wins over everything. */
  home?: string;
  /** Name of the embedding app, /^[a-z0-9][a-z0-9._-]{0,63}$/i. Default "porthole". */
  appName?: string;
  /** Default process.env. */
  env?: Record<string, string | undefined>;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
  /** Default os.homedir(). */
  homedir?: string;
}

/**
 * Where porthole keeps state. Order: explicit `home` → env PORTHOLE_HOME → the per-OS
 * config directory: Linux/other `$XDG_CONFIG_HOME` or `~/.config`; macOS
 * `~/Library/Application Support`; Windows `%APPDATA%`. Under it, appName "porthole" uses
 * `<base>/porthole`, and any other app X uses `<base>/X/porthole` — inside the app's own
 * directory, so two apps embedding porthole never share a token by accident.
 * The result is absolute.
 */
export function resolveHome(options: ResolveHomeOptions = {}): string {
  const appName = options.appName ?? DEFAULT_APP_NAME;
  if (!APP_NAME_RE.test(appName)) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      `invalid appName ${JSON.stringify(appName)}: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const path = platform === 'win32' ? win32 : posix;

  if (options.home !== undefined) {
    if (options.home === '') throw new PortholeError('INVALID_ARGUMENT', 'invalid home: empty path');
    return path.resolve(options.home);
  }
  // An empty variable counts as unset, as shells and service managers often leave them.
  if (env['PORTHOLE_HOME']) return path.resolve(env['PORTHOLE_HOME']);

  const base = configBase(platform, env, () => options.homedir ?? osHomedir());
  const dir = appName === DEFAULT_APP_NAME ? path.join(base, appName) : path.join(base, appName, DEFAULT_APP_NAME);
  return path.resolve(dir);
}

function configBase(
  platform: NodeJS.Platform,
  env: Record<string, string | undefined>,
  getHome: () => string,
): string {
  const home = (): string => {
    const h = getHome();
    if (!h) {
      throw new PortholeError(
        'INVALID_ARGUMENT',
        'cannot find the home directory to place porthole state in; set PORTHOLE_HOME',
      );
    }
    return h;
  };
  if (platform === 'win32') return env['APPDATA'] || win32.join(home(), 'AppData', 'Roaming');
  if (platform === 'darwin') return posix.join(home(), 'Library', 'Application Support');
  // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env['XDG_CONFIG_HOME'];
  if (xdg && posix.isAbsolute(xdg)) return xdg;
  return posix.join(home(), '.config');
}

export interface StatePathsOptions {
  /** Default process.platform. */
  platform?: NodeJS.Platform;
  /** Directory for the short socket fallback. Default os.tmpdir(). */
  tmpdir?: string;
  /** Owner of the fallback directory name. Default process.getuid(). */
  uid?: number;
}

/**
 * The files in a porthole home. The socket is `<home>/run/gateway.sock`, unless that is
 * longer than MAX_SOCKET_PATH_BYTES; then it is
 * `<tmpdir>/porthole-<uid>/<first 16 hex of sha256(home)>.sock`. That directory lives in
 * a shared place, so it must be created — and checked to be owned by the current user
 * and private — with ensureOwnedPrivateDir before binding (ensureSocketDir does this).
 * On Windows the socket is the named pipe `\\.\pipe\porthole-<hash>`.
 */
export function statePaths(home: string, options: StatePathsOptions = {}): StatePaths {
  const platform = options.platform ?? process.platform;
  const path = platform === 'win32' ? win32 : posix;
  const root = path.resolve(home);
  const runDir = path.join(root, 'run');
  return {
    home: root,
    configFile: path.join(root, 'porthole.toml'),
    secretsDir: path.join(root, 'secrets'),
    tokenFile: path.join(root, 'secrets', 'token'),
    identityDir: path.join(root, 'identity'),
    acmeDir: path.join(root, 'acme'),
    devicesFile: path.join(root, 'devices.json'),
    auditLog: path.join(root, 'audit.log'),
    runDir,
    socketPath: socketPathFor(root, runDir, platform, options),
    stateFile: path.join(root, 'state.json'),
    sessionsFile: path.join(root, 'sessions.json'),
  };
}

function socketPathFor(home: string, runDir: string, platform: NodeJS.Platform, options: StatePathsOptions): string {
  // Windows paths are case-insensitive: one home, one pipe name.
  const hash = createHash('sha256')
    .update(platform === 'win32' ? home.toLowerCase() : home)
    .digest('hex')
    .slice(0, 16);
  if (platform === 'win32') return `\\\\.\\pipe\\porthole-${hash}`;

  const preferred = posix.join(runDir, 'gateway.sock');
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH_BYTES) return preferred;
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const leaf = posix.join(`porthole-${uid}`, `${hash}.sock`);
  const fallback = posix.join(options.tmpdir ?? osTmpdir(), leaf);
  // A deep TMPDIR would defeat the fallback; /tmp exists on every POSIX system.
  if (Buffer.byteLength(fallback) <= MAX_SOCKET_PATH_BYTES) return fallback;
  return posix.join('/tmp', leaf);
}

/**
 * Creates the directory that will hold the gateway socket: run/ (0700) inside the home,
 * or the fallback directory in a shared temp dir, which must already be ours and private.
 * Nothing to do for a Windows named pipe.
 */
export function ensureSocketDir(paths: StatePaths): void {
  if (paths.socketPath.startsWith('\\\\.\\pipe\\')) return;
  const dir = posix.dirname(paths.socketPath);
  if (dir === paths.runDir) ensureDir(dir, 0o700);
  else ensureOwnedPrivateDir(dir);
}
