// Reads the small JSON body of a request to porthole's own API (control socket and HTTP).
import type { IncomingMessage } from 'node:http';
import { PortholeError } from '../errors.js';

/** Largest body porthole's API accepts (PAYLOAD_TOO_LARGE above). */
export const MAX_API_BODY = 64 * 1024;

/** The body as a JSON object; `{}` when empty or not an object. BAD_REQUEST when not JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_API_BODY) throw new PortholeError('PAYLOAD_TOO_LARGE', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    throw new PortholeError('BAD_REQUEST', 'body is not JSON');
  }
}
