// The web console's static files (`/_porthole/ui/`, built from console/ into dist/console by
// scripts/build-console.mjs) and the small session endpoint the console signs in with.
// The assets are public by design (DESIGN §3): they hold no data, every API call needs a
// session. They are served from a fixed list read once from disk (no path from the URL ever
// reaches the file system), with a strict CSP: scripts and styles from this origin only.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { PortholeError } from '../errors.js';
import type { AuthResult } from './pipeline.js';
import { sendError, sendJson } from './respond.js';

export const UI_PREFIX = '/_porthole/ui';
export const SESSION_PATH = '/_porthole/api/session';

/** Whether `path` (no query) is the console's: `/_porthole/ui` or anything below it. */
export function isConsolePath(path: string): boolean {
  return path === UI_PREFIX || path.startsWith(`${UI_PREFIX}/`);
}

/**
 * No inline script or style, no other origin, no framing. `connect-src 'self'` covers the
 * control plane's ws(s):// on this origin (CSP 3); `img-src data:` the QR code's PNG export.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** esbuild's `[name]-[hash]` names: content-addressed, so cacheable for a year. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/;

interface Asset {
  body: Buffer;
  type: string;
  immutable: boolean;
}

export interface ConsoleFiles {
  /** The built console's directory; undefined when it was not built. */
  dir: string | undefined;
  /** URL path below /_porthole/ui/ ('' is index.html) → file. */
  assets: Map<string, Asset>;
}

function candidateDirs(): string[] {
  // dist/gateway/ui.js → dist/console; src/gateway/ui.ts (tsx, tests) → dist/console too.
  return [fileURLToPath(new URL('../console/', import.meta.url)), fileURLToPath(new URL('../../dist/console/', import.meta.url))];
}

/** Reads the built console once: index.html and every file under assets/. */
export function loadConsoleFiles(dirs: readonly string[] = candidateDirs()): ConsoleFiles {
  for (const dir of dirs) {
    let index: Buffer;
    try {
      index = readFileSync(`${dir}index.html`);
    } catch {
      continue;
    }
    const assets = new Map<string, Asset>();
    assets.set('', { body: index, type: TYPES['.html']!, immutable: false });
    let names: string[] = [];
    try {
      names = readdirSync(`${dir}assets`);
    } catch {
      // An index without assets still answers; the page will say it failed to load.
    }
    for (const name of names) {
      const file = `${dir}assets/${name}`;
      if (!statSync(file).isFile()) continue;
      const ext = name.slice(name.lastIndexOf('.'));
      const type = TYPES[ext];
      if (!type) continue;
      assets.set(`assets/${name}`, { body: readFileSync(file), type, immutable: HASHED.test(name) });
    }
    return { dir, assets };
  }
  return { dir: undefined, assets: new Map() };
}

let cached: ConsoleFiles | undefined;

function files(): ConsoleFiles {
  cached ??= loadConsoleFiles();
  return cached;
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

/** GET/HEAD `/_porthole/ui…`: index.html (no-store) or a hashed asset (immutable). */
export function serveConsole(req: IncomingMessage, res: ServerResponse, path: string): void {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    return sendError(res, new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed'), { allow: 'GET, HEAD' });
  }
  if (path === UI_PREFIX) {
    // Relative links need the trailing slash; the query (if any) was already handled.
    res.writeHead(308, { location: `${UI_PREFIX}/`, 'cache-control': 'no-store', ...SECURITY_HEADERS });
    res.end();
    return;
  }
  const { dir, assets } = files();
  if (dir === undefined) {
    return sendError(res, new PortholeError('NOT_FOUND', 'the console is not built: run `npm run build` in the porthole checkout'));
  }
  const rel = path.slice(UI_PREFIX.length + 1);
  // Client-side routes live in the fragment (#/settings/…), so only exact files exist.
  const asset = rel === '' || rel === 'index.html' ? assets.get('') : assets.get(rel);
  if (!asset) return sendError(res, new PortholeError('NOT_FOUND', `no console file ${path}`));
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': asset.body.length,
    // index.html names the current hashed assets and must never be stale.
    'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-store',
    ...SECURITY_HEADERS,
  });
  res.end(method === 'HEAD' ? undefined : asset.body);
}

export interface SessionContext {
  /** Creates a session for the credential (scope fixed by it) and returns its Set-Cookie header. */
  startSession(credential: string, scope: 'admin' | 'read'): string;
}

/**
 * `/_porthole/api/session`. GET: who the caller is (`{"identity":{sub,cred,scope}}`), so the
 * console knows what to show. POST with `Authorization: Bearer ph_…|phd_…`: trades the
 * bearer credential (checked and counted by the pipeline like any other) for a session
 * cookie, so a token typed into the console never lands in a URL. Same-origin only.
 */
export function handleSessionApi(req: IncomingMessage, res: ServerResponse, auth: AuthResult, own: string | undefined, ctx: SessionContext): void {
  const method = req.method ?? 'GET';
  const identity = { sub: auth.identity.sub, cred: auth.identity.cred, scope: auth.identity.scope };
  if (method === 'GET' || method === 'HEAD') return sendJson(res, 200, { identity });
  if (method !== 'POST') {
    return sendError(res, new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed'), { allow: 'GET, HEAD, POST' });
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== own) {
    return sendError(res, new PortholeError('ORIGIN_NOT_ALLOWED', 'a session is only started from the console on this origin'));
  }
  // Already a session (or the loopback exemption, which never reaches /api/): nothing to trade.
  if (auth.ambient || auth.credential === undefined || (auth.identity.scope !== 'admin' && auth.identity.scope !== 'read')) {
    return sendJson(res, 200, { identity, started: false });
  }
  const cookie = ctx.startSession(auth.credential, auth.identity.scope);
  sendJson(res, 201, { identity, started: true }, { 'set-cookie': cookie });
}
