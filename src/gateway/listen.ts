// The gateway's own TCP listener for `porthole serve`: node:http with limits against
// slow and oversized clients, errors answered as JSON, listen failures turned into
// errors that say what to do.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import { PortholeError, errorBody } from '../errors.js';
import type { Gateway } from './gateway.js';
import { attachFront } from './front.js';

export interface ListenOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Time a client has to send its request headers (slowloris). Default 10 s. */
  headersTimeoutMs?: number;
  /** Largest request head accepted; larger gets 431. Default 16 KiB. */
  maxHeaderSize?: number;
  /** Idle keep-alive connections close after this. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Serve HTTPS (TLS 1.3 minimum) with this certificate and key (PEM). Default: plain HTTP. */
  tls?: { cert: string; key: string };
  /**
   * Read connections (plain or, after TLS, HTTPS) with the front first (front.ts) when the
   * gateway proxies to an http:// or unix: target. Default true.
   */
  front?: boolean;
}

export interface Listening {
  server: Server;
  host: string;
  port: number;
  /** A URL for this host: wildcard binds are shown as loopback. */
  url: string;
  close(): Promise<void>;
}

export function formatHostForUrl(host: string): string {
  // A bare IPv6 host from the config is already bracketed ("[fd00::5]").
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export interface GatewayServer {
  server: Server;
  /** Ends every connection, upgraded ones included (they escape closeAllConnections). */
  closeConnections(): void;
}

/**
 * The hardened node:http server porthole mounts a gateway in: used by listenGateway and,
 * without listening, by the tunnel, which emits visitor connections into it.
 */
export function createGatewayServer(gateway: Pick<Gateway, 'handleRequest' | 'handleCheckContinue' | 'handleUpgrade'>, options: Omit<ListenOptions, 'host' | 'port'> = {}): GatewayServer {
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const httpOptions = {
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    // Bodies may stream for hours (downloads, SSE); only the head is time-boxed.
    requestTimeout: 0,
    headersTimeout,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    connectionsCheckingInterval: Math.min(1_000, headersTimeout),
    noDelay: true,
  };
  // `--tls`: TLS 1.3 only (docs/control-plane.md "TLS"); the handshake is time-boxed like headers.
  const server: Server = options.tls
    ? createHttpsServer({ ...httpOptions, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.3', handshakeTimeout: headersTimeout })
    : createServer(httpOptions);
  server.on('request', gateway.handleRequest);
  // Expect: 100-continue: the 100 only after the pipeline has let the request through.
  server.on('checkContinue', gateway.handleCheckContinue);
  // Upgraded sockets leave the HTTP server's bookkeeping (closeAllConnections misses them)
  // but still hold server.close() open: track them so close() can end them.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    gateway.handleUpgrade(req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    let e: PortholeError;
    if (err.code === 'HPE_HEADER_OVERFLOW') e = new PortholeError('HEADERS_TOO_LARGE', 'request headers too large');
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') e = new PortholeError('REQUEST_TIMEOUT', 'request headers not received in time');
    else e = new PortholeError('BAD_REQUEST', 'malformed request');
    if (!socket.writable || (err as { bytesParsed?: number }).bytesParsed === 0 && err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const body = errorBody(e);
    socket.end(
      `HTTP/1.1 ${e.status} ${e.code}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return {
    server,
    closeConnections() {
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
    },
  };
}

export function listenGateway(gateway: Gateway, options: ListenOptions): Promise<Listening> {
  const made = createGatewayServer(gateway, options);
  const server = made.server;
  const front =
    options.front !== false && gateway.frontHooks !== undefined
      ? attachFront(server, gateway.frontHooks, {
          headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
          keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5_000,
          maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
        })
      : undefined;
  const closeConnections = (): void => {
    front?.closeConnections();
    made.closeConnections();
  };
  // [gateway] allow_cidrs: a peer outside them is dropped on accept, before a byte is read.
  server.prependListener('connection', (socket: Socket) => {
    if (!gateway.acceptsPeer(socket.remoteAddress)) socket.destroy();
  });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = `${formatHostForUrl(options.host)}:${options.port}`;
      if (err.code === 'EADDRINUSE') {
        reject(
          new PortholeError('ADDRESS_IN_USE', `${where} is already in use (another porthole? try \`porthole status\`); choose another --port`, { cause: err }),
        );
      } else if (err.code === 'EADDRNOTAVAIL') {
        reject(new PortholeError('LISTEN_FAILED', `cannot bind ${where}: no such address on this machine`, { cause: err }));
      } else if (err.code === 'EACCES') {
        reject(new PortholeError('LISTEN_FAILED', `cannot bind ${where}: permission denied (ports below 1024 need privileges)`, { cause: err }));
      } else {
        reject(new PortholeError('LISTEN_FAILED', `cannot bind ${where}: ${err.message}`, { cause: err }));
      }
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      const addr = server.address() as AddressInfo;
      const wildcard = options.host === '0.0.0.0' || options.host === '::';
      const shown = wildcard ? (options.host === '::' ? '::1' : '127.0.0.1') : addr.address;
      resolve({
        server,
        host: addr.address,
        port: addr.port,
        url: `${options.tls ? 'https' : 'http'}://${formatHostForUrl(shown)}:${addr.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            closeConnections();
          }),
      });
    });
  });
}
