// `porthole password set | clear`: the password for auth.mode = "password". It is read from
// stdin, or from a no-echo prompt on a terminal — never from argv (other local users can read
// the process list) — and stored only as a scrypt hash in the secret store. A running gateway
// is told at once: sessions signed in with the old password end.
import { PASSWORD_STORE_KEY, hashPassword, passwordProblem, MIN_PASSWORD_CHARS } from '../auth/password.js';
import { PortholeError, isPortholeError } from '../errors.js';
import { openSecretStore } from '../secrets/store.js';
import { homePaths, type CliContext } from './context.js';
import { callGateway } from './socket-client.js';

/** What password set needs of stdin: a stream, and on a terminal raw mode for the hidden prompt. */
export type PasswordInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** Reads one line without echo (raw mode): Enter ends it, Backspace edits, Ctrl-C cancels. */
function promptHidden(stdin: PasswordInput, stderr: NodeJS.WritableStream, prompt: string): Promise<string> {
  stderr.write(prompt);
  stdin.setRawMode!(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (err?: PortholeError) => {
      stdin.off('data', onData);
      stdin.setRawMode!(false);
      stdin.pause();
      stderr.write('\n');
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: string | Buffer) => {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new PortholeError('INVALID_ARGUMENT', 'cancelled; the password was not changed'));
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else line += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readAll(stdin: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.length > 64 * 1024) throw new PortholeError('PASSWORD_WEAK', 'stdin holds more than a password');
  }
  return text;
}

async function readPassword(ctx: CliContext, stdin: PasswordInput): Promise<string> {
  if (stdin.isTTY && typeof stdin.setRawMode === 'function') {
    const first = await promptHidden(stdin, ctx.stderr, 'New password: ');
    const problem = passwordProblem(first);
    if (problem) throw weak(problem);
    const again = await promptHidden(stdin, ctx.stderr, 'Repeat it: ');
    if (again !== first) throw new PortholeError('PASSWORD_WEAK', 'the two passwords differ; nothing was changed');
    return first;
  }
  const text = await readAll(stdin);
  if (text.length === 0) {
    throw new PortholeError(
      'PASSWORD_WEAK',
      'stdin is empty: pipe the password in (e.g. from a password manager), or run the command on a terminal to be prompted',
    );
  }
  // One trailing newline is the line's end, not part of the password.
  const password = text.replace(/\r?\n$/, '');
  const problem = passwordProblem(password);
  if (problem) throw weak(problem);
  return password;
}

function weak(problem: string): PortholeError {
  return new PortholeError('PASSWORD_WEAK', `${problem}; use at least ${MIN_PASSWORD_CHARS} characters (a few words make a good passphrase)`);
}

/** Tells a running gateway; no gateway is fine (it reads the store when it starts). */
async function notifyGateway(ctx: CliContext): Promise<string> {
  try {
    const r = await callGateway<{ sessionsEnded: number; connectionsClosed: number }>(
      homePaths(ctx),
      'POST',
      '/_porthole/api/password/changed',
      {},
    );
    return `The running gateway applied it: ${r.sessionsEnded} session(s) signed in with the old password ended.\n`;
  } catch (err) {
    if (isPortholeError(err, 'GATEWAY_NOT_RUNNING')) return '';
    throw err;
  }
}

export async function passwordSet(ctx: CliContext, stdin: PasswordInput): Promise<number> {
  const password = await readPassword(ctx, stdin);
  const hash = await hashPassword(password);
  const paths = homePaths(ctx);
  const store = openSecretStore(paths);
  store.set(PASSWORD_STORE_KEY, hash);
  ctx.stderr.write(`Password set: a scrypt hash is stored in the ${store.describe()}.\n`);
  ctx.stderr.write(await notifyGateway(ctx));
  ctx.stderr.write('It is used when auth.mode = "password" (porthole serve --auth-mode password).\n');
  return 0;
}

export async function passwordClear(ctx: CliContext): Promise<number> {
  const store = openSecretStore(homePaths(ctx));
  store.delete(PASSWORD_STORE_KEY);
  ctx.stderr.write('Password removed. A gateway in password mode accepts no password login until one is set again.\n');
  ctx.stderr.write(await notifyGateway(ctx));
  return 0;
}
