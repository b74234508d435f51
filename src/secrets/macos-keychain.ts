// The macOS Keychain as a keyring backend, driven through the stock `security` tool. Its
// usual `add-generic-password -w SECRET` would put the secret in argv, which every local
// user can read in the process list; porthole instead starts `security -i` and writes the
// command line to its stdin, with the value hex-encoded after `-X` (no quoting, any byte).
// Reads go through `find-generic-password -w`, which prints the value on stdout. No shell;
// every call is bounded by a timeout. Items carry service "porthole", account
// "<name>@<home>" and the label "porthole <name> (<home>)", like the Secret Service's.
//
// `security -i` splits each line itself (security.c: split_line — whitespace-separated,
// '…' or "…" quotes, backslash escapes, 4,096 bytes per line, 32 arguments), so every
// argument is double-quoted with \ and " escaped, and lines that would not fit are refused
// before anything is written. Whether a write took effect is never taken from the exit
// status (interactive mode reports only its last command): the value is read back.
import { type KeyringBackend, type KeyringProbe, keyringUnavailable } from './keyring.js';
import { STORED_SECRET_NAMES } from './names.js';
import { findTool, firstLine, KEYRING_TOOL_TIMEOUT_MS, pickEnv, runTool, type ToolResult } from './tool.js';

const SERVICE = 'porthole';
/** security.c MAX_LINE_LEN: the interactive line buffer, newline included. */
const MAX_LINE_BYTES = 4096;
/** `security` exits with the low byte of the OSStatus; errSecItemNotFound (-25300) → 44. */
const EXIT_NOT_FOUND = 44;
/** errSecInteractionNotAllowed (-25308) → 36: a locked keychain without a GUI to unlock it. */
const EXIT_INTERACTION_NOT_ALLOWED = 36;
/**
 * Values that are not printable ASCII are stored base64-encoded behind this prefix:
 * `find-generic-password -w` prints such values as hex, indistinguishable from a value
 * that is hex text. porthole's own secrets (tokens, keys, hashes) are printable and
 * stored as they are, so Keychain Access shows them as written.
 */
const ENCODED_PREFIX = 'porthole-base64:';
/** Temporary directories macOS empties at boot: a keychain there does not persist. */
const TEMP_DIRS = ['/tmp/', '/private/tmp/', '/var/folders/', '/private/var/folders/', '/var/tmp/', '/private/var/tmp/'];

export interface MacosKeychainOptions {
  /** PATH (to find `security`; absolute entries only) and HOME. */
  env: Record<string, string | undefined>;
  /** Default KEYRING_TOOL_TIMEOUT_MS (5 s): a hang is a prompt nobody answers. */
  timeoutMs?: number;
}

export function createMacosKeychainBackend(options: MacosKeychainOptions): KeyringBackend {
  const timeoutMs = options.timeoutMs ?? KEYRING_TOOL_TIMEOUT_MS;
  /** The default keychain a successful probe found. */
  let keychain: string | undefined;

  const run = (args: string[], input = ''): ToolResult =>
    runTool('security', args, {
      env: { ...pickEnv(options.env, ['PATH', 'HOME']), LC_ALL: 'C' },
      timeoutMs,
      input,
      missing: 'the `security` tool is not on PATH (it ships with macOS in /usr/bin)',
      timeoutHint: 'a keychain prompt nobody answered?',
    });

  const problem = (r: ToolResult): string => {
    if (r.failure) return r.failure;
    if (r.status === EXIT_INTERACTION_NOT_ALLOWED) return 'the keychain is locked and cannot be unlocked without the desktop session (typical over SSH)';
    return firstLine(r.stderr) || `security exited with ${r.status}`;
  };

  const probe = (): KeyringProbe => {
    keychain = undefined;
    if (findTool('security', options.env) === undefined) return { ok: false, reason: 'the `security` tool is not on PATH' };
    const d = run(['default-keychain']);
    if (!d.ok) return { ok: false, reason: `there is no default keychain: ${problem(d)}` };
    // `    "/Users/me/Library/Keychains/login.keychain-db"`
    const path = /"([^"]+)"/.exec(d.stdout)?.[1];
    if (path === undefined) return { ok: false, reason: `cannot read the default keychain's path from \`security default-keychain\`: ${firstLine(d.stdout.trim())}` };
    if (TEMP_DIRS.some((t) => path.startsWith(t))) return { ok: false, reason: `the default keychain ${path} is in a temporary directory, which macOS empties at boot` };
    // A search needs the keychain unlocked: "not found" means usable; locked fails with 36
    // (or shows the unlock prompt in a desktop session, bounded by the timeout).
    const s = run(['find-generic-password', '-s', SERVICE, '-a', `probe@${path}`]);
    if (s.ok || notFound(s)) {
      keychain = path;
      return { ok: true, where: `macOS keychain ${path}` };
    }
    return { ok: false, reason: `the keychain ${path} cannot be searched: ${problem(s)}` };
  };

  const ensure = (what: string): string => {
    if (keychain !== undefined) return keychain;
    const p = probe();
    if (!p.ok) throw keyringUnavailable(`Cannot ${what} in the OS keyring: ${p.reason}.`);
    return keychain!;
  };

  const failed = (what: string, r: ToolResult): never => {
    keychain = undefined;
    throw keyringUnavailable(`Cannot ${what} in the OS keyring: ${problem(r)}.`);
  };

  /** find-generic-password -w: the stored text, or undefined when there is no such item. */
  const read = (home: string, name: string, what: string): string | undefined => {
    const r = run(['find-generic-password', '-s', SERVICE, '-a', account(home, name), '-w']);
    if (r.ok) return decode(r.stdout.endsWith('\n') ? r.stdout.slice(0, -1) : r.stdout);
    if (notFound(r)) return undefined;
    return failed(what, r);
  };

  return {
    name: 'macOS Keychain',
    id: MACOS_KEYCHAIN_BACKEND,
    probe,
    get(home, name) {
      ensure(`read the secret "${name}"`);
      return read(home, name, `read the secret "${name}"`);
    },
    set(home, name, value) {
      const where = ensure(`store the secret "${name}"`);
      const line = commandLine(['add-generic-password', '-U', '-s', SERVICE, '-a', account(home, name), '-l', `porthole ${name} (${home})`, '-X', Buffer.from(encode(value), 'utf8').toString('hex')]);
      if (Buffer.byteLength(line) > MAX_LINE_BYTES - 1) {
        throw keyringUnavailable(`Cannot store the secret "${name}" in the macOS keychain: with this home's path it would exceed the ${MAX_LINE_BYTES}-byte command line of \`security -i\`.`);
      }
      const r = run(['-i'], `${line}\n`);
      if (r.failure !== undefined) failed(`store the secret "${name}"`, r);
      // Interactive mode's exit status is that of its last command; the read-back decides.
      if (read(home, name, `check the stored secret "${name}"`) !== value) {
        keychain = undefined;
        throw keyringUnavailable(`The secret "${name}" did not read back from ${where} as written: ${problem(r)}.`);
      }
    },
    delete(home, name) {
      ensure(`delete the secret "${name}"`);
      const r = run(['delete-generic-password', '-s', SERVICE, '-a', account(home, name)]);
      if (r.ok || notFound(r)) return;
      failed(`delete the secret "${name}"`, r);
    },
    list(home) {
      // `security` cannot search by a prefix of the account; porthole knows its names.
      ensure('list secrets');
      return STORED_SECRET_NAMES.filter((n) => read(home, n, 'list secrets') !== undefined).sort();
    },
  };
}

/** The id recorded in state.json. */
export const MACOS_KEYCHAIN_BACKEND = 'macos-keychain';

function account(home: string, name: string): string {
  // Newlines would end the interactive line; other control characters have no place in a
  // path porthole shows. Refused, never mangled: the item must be found again by this name.
  if (/[\u0000-\u001f\u007f]/.test(home)) {
    throw keyringUnavailable(`The home path ${JSON.stringify(home)} contains control characters, which the macOS keychain backend cannot address.`);
  }
  return `${name}@${home}`;
}

/** One `security -i` line: every argument double-quoted, with \ and " escaped (split_line). */
function commandLine(args: string[]): string {
  return args.map((a) => `"${a.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(' ');
}

/** `security` ran and answered errSecItemNotFound. */
function notFound(r: ToolResult): boolean {
  return r.failure === undefined && r.status === EXIT_NOT_FOUND;
}

function encode(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) && !value.startsWith(ENCODED_PREFIX) ? value : ENCODED_PREFIX + Buffer.from(value, 'utf8').toString('base64');
}

function decode(stored: string): string {
  return stored.startsWith(ENCODED_PREFIX) ? Buffer.from(stored.slice(ENCODED_PREFIX.length), 'base64').toString('utf8') : stored;
}
