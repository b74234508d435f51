// One bounded HTTPS exchange with an ACME server: no redirects followed, the body cut off
// past MAX_BODY_BYTES, aborted by the caller's signal (per-request time-out and the
// issuance's deadline).
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export const MAX_BODY_BYTES = 1024 * 1024;

/** One HTTPS exchange, no redirects followed, the body cut off past MAX_BODY_BYTES. */
export function httpsRequest(
  agent: https.Agent,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, agent, headers, signal }, (res) => {
      const declared = Number(res.headers['content-length']);
      if (declared > MAX_BODY_BYTES) {
        req.destroy(new Error(`response body over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`response body over ${MAX_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error('the connection closed mid-response'));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

