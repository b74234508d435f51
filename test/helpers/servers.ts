// Test plumbing shared by suites: servers on 127.0.0.1 port 0 (or a Unix socket) that are
// ready when the promise resolves, clean shutdown without open handles, and small
// request/response helpers. Readiness is always a real event, never a sleep.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type RequestListener } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** Listens on `host`:`port` (default 127.0.0.1:0) and resolves with the bound port once 'listening' fired. */
export async function listen(server: NetServer, port = 0, host = '127.0.0.1'): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Listens on a Unix socket path and resolves once 'listening' fired. */
export async function listenUnix(server: NetServer, path: string): Promise<void> {
  server.listen(path);
  await once(server, 'listening');
}

/** Closes a server and every connection it still holds (idle keep-alive ones included). */
export async function closeServer(server: NetServer): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  const h = server as Partial<http.Server>;
  h.closeAllConnections?.();
  await closed;
}

export interface HttpTestServer {
  server: http.Server;
  port: number;
  /** "http://127.0.0.1:<port>" */
  origin: string;
  close(): Promise<void>;
}

/** An http.Server on 127.0.0.1:0 running `handler`, ready on return. */
export async function startHttpServer(handler?: RequestListener, options: http.ServerOptions = {}): Promise<HttpTestServer> {
  const server = http.createServer(options, handler);
  const port = await listen(server);
  return { server, port, origin: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

/** A fresh temporary directory (e.g. for Unix sockets) and its removal. */
export function tempDir(prefix = 'porthole-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reads a stream to its end. */
export async function collectBody(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  trailers: NodeJS.Dict<string>;
  body: Buffer;
  text: string;
}

/**
 * One request without connection pooling (agent: false, so no socket outlives the test),
 * resolved with the whole response.
 */
export async function fetchRaw(options: http.RequestOptions & { body?: string | Buffer }): Promise<Fetched> {
  const { body, ...rest } = options;
  const req = http.request({ agent: false, host: '127.0.0.1', ...rest });
  const responded = once(req, 'response') as Promise<[IncomingMessage]>;
  req.end(body);
  const [res] = await responded;
  const data = await collectBody(res);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    rawHeaders: res.rawHeaders,
    trailers: res.trailers,
    body: data,
    text: data.toString('utf8'),
  };
}
