// Canned answers the proxy gives in place of the target's: built once at load, sent as they are.
import type { OutgoingHttpHeaders } from 'node:http';
import { errorBody, PortholeError } from '../errors.js';

export interface ErrorAnswer {
  status: number;
  body: Buffer;
  headers: OutgoingHttpHeaders;
  /** Same, with `Connection: close`: the request body was not read to its end. */
  headersClose: OutgoingHttpHeaders;
  /** The whole answer for a raw (upgrade) socket. */
  raw: Buffer;
}

function errorAnswer(status: number, reason: string, err: PortholeError): ErrorAnswer {
  const body = Buffer.from(errorBody(err));
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(body.length),
    'cache-control': 'no-store',
  };
  const head =
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`;
  return {
    status,
    body,
    headers,
    headersClose: { ...headers, connection: 'close' },
    raw: Buffer.concat([Buffer.from(head, 'latin1'), body]),
  };
}

// The messages are generic on purpose: a remote visitor learns that the app did not answer,
// not where it lives.
export const UNAVAILABLE = errorAnswer(
  502,
  'Bad Gateway',
  new PortholeError('TARGET_UNAVAILABLE', 'the app behind this gateway did not answer', { expose: true }),
);
export const TIMEOUT = errorAnswer(
  504,
  'Gateway Timeout',
  new PortholeError('TARGET_TIMEOUT', 'the app behind this gateway did not answer in time', { expose: true }),
);
export const INTERNAL = errorAnswer(500, 'Internal Server Error', new PortholeError('INTERNAL', 'request not forwarded'));
export const BODY_STALLED = errorAnswer(
  408,
  'Request Timeout',
  new PortholeError('REQUEST_TIMEOUT', 'the request body stopped arriving', { expose: true }),
);
