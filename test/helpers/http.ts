// Small request utilities for e2e tests against a running gateway on 127.0.0.1: one-shot
// requests (no pooling), error codes from porthole's JSON bodies, session cookies from
// Set-Cookie, streams that stay open, and WebSocket connects that report refusals.
import { once } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { type Fetched, fetchRaw } from './servers.js';

export interface Reply extends Fetched {
  /** The body parsed as JSON (undefined if it is not JSON). */
  json: unknown;
  /** `error.code` of a porthole error body, if any. */
  code: string | undefined;
}

/**
 * One request to 127.0.0.1:`port`, without connection reuse. Node sets Host to
 * 127.0.0.1:port unless `headers.host` says otherwise. `localAddress` (another loopback
 * address, e.g. 127.0.0.2) makes the gateway see a different peer, so a different ban key.
 */
export async function send(
  port: number,
  path: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string; localAddress?: string } = {},
): Promise<Reply> {
  const { method = 'GET', headers = {}, body, localAddress } = options;
  const r = await fetchRaw({ port, path, method, headers, body, ...(localAddress ? { localAddress } : {}) });
  let json: unknown;
  try {
    json = JSON.parse(r.text);
  } catch {
    json = undefined;
  }
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return { ...r, json, code: typeof code === 'string' ? code : undefined };
}

/** What the echo app saw, from a forwarded reply. */
export interface Echoed {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export function echoed(r: Reply): Echoed {
  if (r.status !== 200 || r.json === undefined || typeof (r.json as Echoed).url !== 'string') {
    throw new Error(`expected the echo app's answer, got ${r.status}: ${r.text}`);
  }
  return r.json as Echoed;
}

export interface SetCookie {
  name: string;
  value: string;
  /** "name=value", ready for a Cookie header. */
  pair: string;
  /** The attributes, as sent (e.g. ["Path=/", "HttpOnly", "SameSite=Lax"]). */
  attributes: string[];
}

/** The porthole session cookie set by a reply (name starting with `porthole_session_` or `__Host-porthole_session_`). */
export function sessionCookie(r: Fetched): SetCookie {
  for (const line of r.headers['set-cookie'] ?? []) {
    const [first = '', ...attributes] = line.split(';').map((s) => s.trim());
    const eq = first.indexOf('=');
    const name = first.slice(0, eq);
    if (eq > 0 && /^(__Host-)?porthole_session_/.test(name)) {
      return { name, value: first.slice(eq + 1), pair: first, attributes };
    }
  }
  throw new Error(`no porthole session cookie in ${JSON.stringify(r.headers['set-cookie'])}`);
}

/** Signs a browser in with `?token=` and returns the session cookie pair. */
export async function login(port: number, token: string): Promise<SetCookie> {
  const r = await send(port, `/?token=${encodeURIComponent(token)}`);
  if (r.status !== 303) throw new Error(`login: expected 303, got ${r.status}: ${r.text}`);
  return sessionCookie(r);
}

export interface OpenStream {
  req: http.ClientRequest;
  res: IncomingMessage;
  /** Resolves when the response (and its socket) closed, for whatever reason. */
  closed: Promise<void>;
}

/** Starts a GET whose response stays open (SSE, a big download); resolves with the response head. */
export async function openStream(port: number, path: string, headers: OutgoingHttpHeaders): Promise<OpenStream> {
  const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers, agent: false });
  req.on('error', () => {}); // a reset after the head surfaces as 'close'
  const responded = once(req, 'response') as Promise<[IncomingMessage]>;
  req.end();
  const [res] = await responded;
  res.on('error', () => {});
  const closed = new Promise<void>((resolve) => {
    if (res.destroyed) resolve();
    else res.once('close', () => resolve());
  });
  return { req, res, closed };
}

/** Resolves with the first data chunk of a readable response, as text. */
export function nextChunk(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      res.off('close', onClose);
      resolve(d.toString('utf8'));
    };
    const onClose = () => {
      res.off('data', onData);
      reject(new Error('stream closed before data'));
    };
    res.once('data', onData);
    res.once('close', onClose);
  });
}

export type WsOutcome =
  | { kind: 'open'; ws: WebSocket; hello: { hello: boolean; headers: IncomingHttpHeaders; url: string }; closed: Promise<number> }
  | { kind: 'refused'; status: number; body: string; code: string | undefined };

/**
 * Opens a WebSocket and waits for the echo app's hello, or reports the HTTP answer that
 * refused the upgrade.
 */
export function connectWs(url: string, headers: Record<string, string> = {}): Promise<WsOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        ws.terminate();
        resolve({ kind: 'refused', status: res.statusCode ?? 0, body, code });
      });
    });
    ws.once('message', (data) => {
      resolve({ kind: 'open', ws, hello: JSON.parse(String(data)), closed });
    });
    // After the outcome is settled an error (the refusal's abort, a reset) changes nothing.
    ws.on('error', (err) => reject(err));
  });
}

/** Writes `data` on a fresh connection; resolves with all it read once the peer closed, or after `ms`. */
export function exchangeRaw(port: number, data: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      out += d;
    });
    s.on('error', () => {});
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, ms);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(data);
  });
}
