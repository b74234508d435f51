// A small upstream app for gateway tests: echoes what it received, streams SSE in
// lock-step with the test, echoes WebSocket messages, and serves/receives big bodies.
import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface EchoApp {
  server: Server;
  url: string;
  port: number;
  /** Open SSE responses, for the test to push events into. */
  sse: Set<ServerResponse>;
  /** Resolves when an SSE client connects. */
  nextSse(): Promise<ServerResponse>;
  close(): Promise<void>;
}

/** Deterministic bytes: the same generator feeds the download and the test's hash. */
export function patternChunk(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

export async function startEchoApp(): Promise<EchoApp> {
  const sse = new Set<ServerResponse>();
  const waiters: ((r: ServerResponse) => void)[] = [];
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ hello: true, headers: req.headers, url: req.url }));
    ws.on('message', (d, binary) => ws.send(d, { binary }));
  });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.flushHeaders();
      sse.add(res);
      res.on('close', () => sse.delete(res));
      const w = waiters.shift();
      if (w) w(res);
      return;
    }
    if (url.pathname === '/download') {
      const total = Number(url.searchParams.get('bytes') ?? '0');
      const chunk = patternChunk(256 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (url.pathname === '/upload') {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, sha256: h.digest('hex') }));
      });
      return;
    }
    if (url.pathname === '/slow') return; // never answers: for timeouts
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    sse,
    nextSse: () => new Promise((r) => waiters.push(r)),
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
