// The password login (auth.mode = "password"): GET /_porthole/login shows a form, POST
// checks the password and answers with a session cookie and a 303 to a same-site path.
// Public by design (DESIGN §3); the pipeline has already refused cross-site POSTs and
// banned clients. Guesses count toward the client's ban and pass a global throttle.
// The submitted password is never echoed, logged or kept.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LOGIN_PATH, type PasswordKeeper, type PasswordThrottle } from '../auth/password.js';
import type { BanTable } from '../auth/rate-limit.js';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Decision } from './pipeline.js';
import { sendError } from './respond.js';

type Routed = Extract<Decision, { kind: 'porthole' }>;

export interface LoginContext {
  passwords: PasswordKeeper;
  throttle: PasswordThrottle;
  bans: BanTable;
  /** Creates a session for `credential`; returns its Set-Cookie header. */
  startSession(credential: string): string;
  logger: Logger;
}

/** Form bodies are tiny: a password (≤ 1024 characters) and a path. */
const MAX_BODY_BYTES = 8 * 1024;
const MAX_NEXT_CHARS = 2048;

/**
 * Where to go after signing in: a same-site absolute path, else "/". Refuses
 * scheme-relative (`//host`), backslashes (`/\host`, read as `//host` by browsers),
 * control characters, and the login page itself.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length === 0 || next.length > MAX_NEXT_CHARS) return '/';
  if (!next.startsWith('/') || next.startsWith('//') || next.includes('\\') || /[\u0000-\u001f\u007f]/.test(next)) return '/';
  let url: URL;
  try {
    url = new URL(next, 'http://porthole.invalid');
  } catch {
    return '/';
  }
  if (url.origin !== 'http://porthole.invalid' || url.pathname === LOGIN_PATH) return '/';
  return next;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // No script at all; the form may only post back to us; never framed (clickjacking).
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

/** The form. `message` is one of porthole's own fixed texts, never request input. */
export function loginPage(next: string, message?: string): string {
  const notice = message ? `<p role="alert" class="err">${escapeHtml(message)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Sign in · porthole</title>
<style>body{font:16px system-ui,sans-serif;max-width:22rem;margin:15vh auto;padding:0 1rem}
input,button{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;margin:.25rem 0}.err{color:#b00020}</style>
</head><body><h1>Sign in</h1>${notice}
<form method="post" action="${LOGIN_PATH}">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form></body></html>
`;
}

function sendPage(res: ServerResponse, status: number, html: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-length': String(Buffer.byteLength(html)), ...extra });
  res.end(html);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new PortholeError('PAYLOAD_TOO_LARGE', 'login form too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

interface Submitted {
  password: string | undefined;
  next: string;
  form: boolean;
}

function parseSubmission(req: IncomingMessage, body: string): Submitted {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    let v: unknown;
    try {
      v = JSON.parse(body);
    } catch {
      throw new PortholeError('BAD_REQUEST', 'body is not JSON');
    }
    const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
    return { password: typeof o['password'] === 'string' ? o['password'] : undefined, next: safeNext(o['next']), form: false };
  }
  if (type === 'application/x-www-form-urlencoded') {
    const p = new URLSearchParams(body);
    return { password: p.get('password') ?? undefined, next: safeNext(p.get('next')), form: true };
  }
  throw new PortholeError('BAD_REQUEST', 'send the login as application/x-www-form-urlencoded or application/json');
}

export function handleLogin(req: IncomingMessage, res: ServerResponse, d: Routed, ctx: LoginContext): void {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') {
    const q = (req.url ?? '').indexOf('?');
    const next = safeNext(q < 0 ? undefined : new URLSearchParams((req.url ?? '').slice(q + 1)).get('next'));
    sendPage(res, 200, loginPage(next));
    return;
  }
  if (method !== 'POST') {
    sendError(res, new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed'), { allow: 'GET, HEAD, POST' });
    return;
  }
  submit(req, res, d, ctx).catch((err: unknown) => {
    const e = err instanceof PortholeError ? err : new PortholeError('INTERNAL', 'internal error', { expose: false });
    if (!(err instanceof PortholeError)) ctx.logger.log('error', 'login failed', { error: (err as Error)?.message });
    sendError(res, e);
  });
}

async function submit(req: IncomingMessage, res: ServerResponse, d: Routed, ctx: LoginContext): Promise<void> {
  const s = parseSubmission(req, await readBody(req));
  const answer = (err: PortholeError): void => {
    if (!s.form) return sendError(res, err);
    const extra: Record<string, string> = {};
    if (err.retryAfter !== undefined) extra['retry-after'] = String(err.retryAfter);
    sendPage(res, err.status, loginPage(s.next, `${err.message} [${err.code}]`), extra);
  };
  if (!s.password) return answer(new PortholeError('BAD_REQUEST', 'enter the password'));
  if (ctx.passwords.credential() === undefined) {
    return answer(new PortholeError('PASSWORD_NOT_SET', 'no password is set on this gateway', { status: 503, expose: true }));
  }
  const slot = ctx.throttle.take();
  if (!slot.ok) {
    return answer(
      new PortholeError('RATE_LIMITED', 'too many login attempts on this gateway; try again shortly', {
        retryAfter: slot.retryAfterSeconds,
      }),
    );
  }
  let credential: string | undefined;
  try {
    credential = await ctx.passwords.verify(s.password);
  } finally {
    slot.done(credential !== undefined);
  }
  if (credential === undefined) {
    const state = ctx.bans.recordFailure(d.ingress.key);
    ctx.logger.log('info', 'login failed', { peer: req.socket.remoteAddress, ingress: d.ingress.class });
    if (state.banned) {
      return answer(
        new PortholeError('RATE_LIMITED', 'too many failed attempts; try again later', { retryAfter: state.retryAfterSeconds }),
      );
    }
    return answer(new PortholeError('AUTH_INVALID', 'wrong password'));
  }
  const cookie = ctx.startSession(credential);
  ctx.logger.log('info', 'login', { ingress: d.ingress.class });
  res.writeHead(303, { location: s.next, 'set-cookie': cookie, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
  res.end();
}
