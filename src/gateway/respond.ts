// Small helpers for porthole's own answers: JSON bodies, error bodies with stable codes.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { type PortholeError, errorBody } from '../errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: PortholeError, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const h: Record<string, string> = { ...headers };
  // A refusal before the request's body was read closes the connection instead of reading the
  // rest: node:http would otherwise drain any declared (or endless chunked) body, at whatever
  // pace the client likes, on behalf of a client porthole has just turned away.
  if (res.req !== undefined && !res.req.complete) h['connection'] = 'close';
  if (err.retryAfter !== undefined) h['retry-after'] = String(err.retryAfter);
  if (err.code === 'AUTH_REQUIRED' || err.code === 'AUTH_INVALID' || err.code === 'AUTH_REVOKED') {
    h['www-authenticate'] = 'Bearer realm="porthole"';
  }
  const text = errorBody(err);
  res.writeHead(err.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...h,
  });
  res.end(text);
}

/** An error answer written straight onto a socket (upgrade requests have no ServerResponse). */
export function writeSocketError(socket: Duplex, err: PortholeError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = errorBody(err);
  const extra = err.retryAfter !== undefined ? `Retry-After: ${err.retryAfter}\r\n` : '';
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n${extra}Connection: close\r\n\r\n${text}`,
  );
}
