// An emulator of the parts of macOS `security` that porthole's Keychain backend drives,
// for tests on Linux. It follows Apple's SecurityTool sources (security.c, keychain_find.c,
// keychain_add.c) where they are public, and is limited to:
//   default-keychain
//   find-generic-password [-s service] [-a account] [-w]
//   add-generic-password [-U] -s service -a account [-l label] (-X hexdata | -w password)
//   delete-generic-password [-s service] [-a account]
//   -i   commands read from stdin, one per line (split_line: quotes, backslash escapes;
//        lines read through a 4,096-byte buffer, as readline() there does)
// Behaviour kept from the real tool: exit status = the low byte of the OSStatus
// (errSecItemNotFound 44, errSecInteractionNotAllowed 36, errSecNoDefaultKeychain 37);
// -w prints the value, or its hex when any byte is not printable ASCII; in -i mode the exit
// status is the last command's, and a failing command prints "<cmd>: returned N".
// State lives in $HOME/Library/Keychains/login.keychain-db.json. Test switches, files in
// that directory: `locked` (searches and writes fail with 36), `no-default` (no default
// keychain), `hang` (every command sleeps), `drop-writes` (add succeeds but stores nothing),
// `locked-content` (searches work, but reading a value (-w) or adding one fails with 36),
// `default-path` (its text is reported as the default keychain's path).
// Every invocation's argv is appended to $HOME/security-argv.log, so tests can check that
// no secret ever appears there.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const home = process.env.HOME;
if (!home) {
  process.stderr.write('security: HOME is not set\n');
  process.exit(1);
}
const dir = join(home, 'Library', 'Keychains');
const keychainPath = join(dir, 'login.keychain-db');
const stateFile = `${keychainPath}.json`;
const flag = (name) => existsSync(join(dir, name));

appendFileSync(join(home, 'security-argv.log'), `${JSON.stringify(process.argv.slice(2))}\n`);

if (flag('hang')) {
  setTimeout(() => {}, 1e9);
} else {
  process.exitCode = main(process.argv.slice(2));
}

function main(argv) {
  if (argv[0] === '-i' || argv[0] === '-q') return interactive();
  return execute(argv);
}

function interactive() {
  const input = readFileSync(0);
  let result = 0;
  // readline(buffer, 4096): fgets keeps at most 4,095 bytes; the rest is the next "line".
  let pos = 0;
  while (pos < input.length) {
    let end = input.indexOf(0x0a, pos);
    if (end < 0) end = input.length;
    const take = Math.min(end - pos, 4095);
    const line = input.subarray(pos, pos + take).toString('latin1');
    pos = take === end - pos ? end + 1 : pos + take;
    const args = splitLine(line).map((a) => Buffer.from(a, 'latin1').toString('utf8'));
    result = execute(args);
    if (result) process.stderr.write(`${args[0]}: returned ${result}\n`);
  }
  return result;
}

/** security.c split_line: whitespace separates, '…' / "…" quote, backslash escapes one character. */
function splitLine(line) {
  const args = [];
  let cur = null;
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (cur === null) {
      if (/\s/.test(c)) continue;
      cur = '';
      if (c === '"' || c === "'") {
        quote = c;
        continue;
      }
    }
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      continue;
    }
    if (quote !== null ? c === quote : /\s/.test(c)) {
      args.push(cur);
      cur = null;
      quote = null;
      continue;
    }
    cur += c;
  }
  if (cur !== null) args.push(cur);
  return args.slice(0, 32);
}

function load() {
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8'));
  } catch {
    return { items: [] };
  }
}

function save(state) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(stateFile, JSON.stringify(state));
}

function fail(msg, status) {
  process.stderr.write(`security: ${msg}\n`);
  return status;
}

function parse(args, spec) {
  const o = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('-') || a.length < 2) return { error: `unexpected argument ${a}` };
    for (let j = 1; j < a.length; j++) {
      const ch = a[j];
      if (!(ch in spec)) return { error: `illegal option -- ${ch}` };
      if (spec[ch]) {
        const v = j + 1 < a.length ? a.slice(j + 1) : args[++i];
        if (v === undefined) return { error: `option requires an argument -- ${ch}` };
        o[ch] = v;
        break;
      }
      o[ch] = true;
    }
  }
  return o;
}

function execute(argv) {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) return 0;
  if (cmd === 'default-keychain') {
    if (flag('no-default')) return fail('SecKeychainCopyDefault: A default keychain could not be found.', 37);
    const path = flag('default-path') ? readFileSync(join(dir, 'default-path'), 'utf8').trim() : keychainPath;
    process.stdout.write(`    "${path}"\n`);
    return 0;
  }
  if (cmd === 'find-generic-password') {
    const o = parse(rest, { s: true, a: true, w: false, g: false });
    if (o.error) return fail(o.error, 2);
    if (flag('locked')) return fail('SecKeychainSearchCopyNext: User interaction is not allowed.', 36);
    const item = load().items.find((it) => (o.s === undefined || it.svce === o.s) && (o.a === undefined || it.acct === o.a));
    if (!item) return fail('SecKeychainSearchCopyNext: The specified item could not be found in the keychain.', 44);
    if (o.w) {
      if (flag('locked-content')) return fail('SecKeychainItemCopyContent: User interaction is not allowed.', 36);
      const data = Buffer.from(item.data, 'hex');
      const printable = data.every((b) => b >= 0x20 && b < 0x7f);
      process.stdout.write(`${printable ? data.toString('latin1') : data.toString('hex')}\n`);
    } else {
      process.stdout.write(`keychain: "${keychainPath}"\nclass: "genp"\nattributes:\n    "acct"<blob>="${item.acct}"\n    "svce"<blob>="${item.svce}"\n`);
    }
    return 0;
  }
  if (cmd === 'add-generic-password') {
    const o = parse(rest, { U: false, s: true, a: true, l: true, X: true, w: true, j: true });
    if (o.error) return fail(o.error, 2);
    if (o.s === undefined || o.a === undefined) return fail('add-generic-password: -s and -a are required', 2);
    if (flag('locked') || flag('locked-content')) return fail('SecKeychainItemCreateFromContent (<default>): User interaction is not allowed.', 36);
    let data;
    if (o.X !== undefined) {
      if (!/^([0-9a-fA-F]{2})*$/.test(o.X)) return fail('add-generic-password: -X needs hex data', 2);
      data = o.X.toLowerCase();
    } else if (o.w !== undefined) data = Buffer.from(o.w, 'utf8').toString('hex');
    else return fail('add-generic-password: no password given (this emulator does not prompt)', 2);
    if (flag('drop-writes')) return 0;
    const state = load();
    const i = state.items.findIndex((it) => it.svce === o.s && it.acct === o.a);
    if (i >= 0 && !o.U) return fail('SecKeychainItemCreateFromContent (<default>): The specified item already exists in the keychain.', 45);
    const item = { svce: o.s, acct: o.a, labl: o.l ?? o.s, data };
    if (i >= 0) state.items[i] = item;
    else state.items.push(item);
    save(state);
    return 0;
  }
  if (cmd === 'delete-generic-password') {
    const o = parse(rest, { s: true, a: true });
    if (o.error) return fail(o.error, 2);
    if (flag('locked')) return fail('SecKeychainSearchCopyNext: User interaction is not allowed.', 36);
    const state = load();
    const i = state.items.findIndex((it) => (o.s === undefined || it.svce === o.s) && (o.a === undefined || it.acct === o.a));
    if (i < 0) return fail('SecKeychainSearchCopyNext: The specified item could not be found in the keychain.', 44);
    state.items.splice(i, 1);
    save(state);
    process.stdout.write('password has been deleted.\n');
    return 0;
  }
  return fail(`unknown command "${cmd}"`, 1);
}
