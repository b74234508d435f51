// The app every benchmark target ends in: a minimal node:http handler with a small fixed
// body at any path and `/stream?bytes=N`, which sends N bytes from one reused 64 KiB
// buffer, waiting for 'drain' whenever the socket pushes back.
//
// BENCH_APP_WORK_US (default 0) makes each small request spin that many microseconds first,
// standing in for an app that does real work: it shows how much of a gateway's cost remains
// visible once the app itself is not free.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** 13 bytes, the classic hello-world body. */
export const HELLO = Buffer.from('hello, world\n');
const HELLO_HEADERS = { 'content-type': 'text/plain', 'content-length': String(HELLO.length) };
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
/** Upper bound for one streamed body (64 GiB): a typo must not stream forever. */
const MAX_STREAM_BYTES = 64 * 1024 ** 3;
const WORK_MS = Number(process.env['BENCH_APP_WORK_US'] ?? 0) / 1000;

export function appHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (url.startsWith('/stream')) {
    const bytes = Number(new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('bytes') ?? '0');
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_STREAM_BYTES) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('bad bytes\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) });
    streamBody(res, bytes);
    return;
  }
  if (WORK_MS > 0) {
    const until = performance.now() + WORK_MS;
    while (performance.now() < until) {
      // Simulated app work: CPU, as a real handler would use.
    }
  }
  res.writeHead(200, HELLO_HEADERS);
  res.end(HELLO);
}

/** Writes `remaining` bytes with backpressure; stops quietly when the client goes away. */
function streamBody(res: ServerResponse, remaining: number): void {
  const pump = (): void => {
    while (remaining > 0) {
      if (res.destroyed) return;
      const chunk = remaining >= CHUNK.length ? CHUNK : CHUNK.subarray(0, remaining);
      remaining -= chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
