// Forwarding core of the sidecar gateway: streams HTTP exchanges and upgraded connections
// (WebSocket, RFC 6455) to the target app with backpressure, strips hop-by-hop fields
// (RFC 9110 §7.6.1) and ties the two sides' lifetimes together. The gateway decides who may
// pass; this module only transports.
//
// Hot path: per request there is one state object and no closures. Event listeners are
// module-level functions that find their exchange through a symbol on the emitter.
//
// This file is the public face (options, createProxy). The work is split by role:
//   proxy-core.ts     per-target agent and address, sending, header timeout, replay rule
//   proxy-web.ts      one HTTP request/response (node:http: requests with a body, https targets)
//   proxy-fast.ts     one bodiless HTTP request/response to an http:// or unix: target (own client: h1-pool.ts, h1-response.ts)
//   proxy-upgrade.ts  upgrade requests and the spliced connections that follow
//   proxy-errors.ts   the canned 500/502/504 answers
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FrontSink } from './front.js';
import { InvalidRequestError, serializeRequest } from './h1-pool.js';
import { requestHeaders } from './hop-by-hop.js';
import { createCore, targetPath } from './proxy-core.js';
import { INTERNAL } from './proxy-errors.js';
import { FrontExchange } from './proxy-front.js';
import { forwardUpgrade } from './proxy-upgrade.js';
import { forwardWeb } from './proxy-web.js';
import type { Target } from './target.js';

export interface ProxyOptions {
  target: Target;
  /**
   * Milliseconds to wait for the target's response headers (or its answer to an upgrade)
   * once the request has been sent in full, before answering 504 TARGET_TIMEOUT. Like Go's
   * ResponseHeaderTimeout, the clock starts after the body is written, so a long upload is
   * not cut off. Default 30000.
   */
  timeoutMs?: number;
  /**
   * Milliseconds a transfer may move no byte while one side waits on the other — a request body
   * the client stopped sending, an app not reading its request body, a client not reading its
   * answer, an upgraded connection whose reader stopped — before the exchange ends (408 if no
   * answer started, else both connections close). Default 60000.
   */
  stallMs?: number;
  /** Where warnings go (never headers or secrets). Default: none. */
  logger?: Logger;
}

/** What the gateway decided about one request; the proxy only transports. */
export interface ForwardInfo {
  /**
   * Request headers to send, keys in lower case as Node parses them (already stripped of
   * porthole credentials and identity headers by the gateway; may include X-Porthole-*).
   * The proxy removes hop-by-hop headers itself and replaces Host and X-Forwarded-Proto/-Host.
   */
  headers: IncomingHttpHeaders;
  /** Path + query to request on the target (without porthole's token/code parameters). */
  path: string;
  /** Appended to X-Forwarded-For (after any value the gateway left in `headers`). */
  clientAddress: string;
  /** X-Forwarded-Proto. */
  proto: 'http' | 'https';
  /** X-Forwarded-Host; when undefined the header is not sent. */
  host: string | undefined;
}

export interface Proxy {
  web(req: IncomingMessage, res: ServerResponse, fwd: ForwardInfo): void;
  /** Whether `front` can serve this target (http:// and unix: targets: porthole's own client). */
  readonly canFront: boolean;
  /**
   * A bodiless exchange for the front (front.ts), not yet sent; undefined when the request
   * cannot be serialised (a gateway bug: the client got 500 and the connection closes).
   */
  front(sink: FrontSink, method: string, fwd: ForwardInfo, extra: string[] | undefined): FrontExchange | undefined;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, fwd: ForwardInfo): void;
  /** Destroys the keep-alive agent's sockets and every open upgraded connection. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_STALL_MS = 60_000;

/** A timer option in milliseconds, or INVALID_ARGUMENT naming it. */
function timerMs(value: number | undefined, fallback: number, name: string): number {
  // Fractions are rounded up (a config in seconds may give 1500.5); timers cap at 2^31-1 ms.
  const ms = Math.ceil(value ?? fallback);
  if (!(ms >= 1 && ms <= 2_147_483_647)) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid ${name} ${String(value)}: milliseconds between 1 and 2147483647`);
  }
  return ms;
}

export function createProxy(options: ProxyOptions): Proxy {
  const timeoutMs = timerMs(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
  const stallMs = timerMs(options.stallMs, DEFAULT_STALL_MS, 'stallMs');
  const core = createCore(options.target, timeoutMs, stallMs, options.logger);
  return {
    web(req, res, fwd) {
      forwardWeb(core, req, res, fwd);
    },
    canFront: core.pool !== undefined,
    front(sink, method, fwd, extra) {
      let head: string;
      try {
        head = serializeRequest(method, targetPath(core, fwd.path), requestHeaders(fwd, core.hostHeader, false, false));
      } catch (err) {
        if (!(err instanceof InvalidRequestError)) throw err;
        core.logger?.log('error', 'request not forwarded: invalid request line or header', { error: err.message });
        sink.socket.write(INTERNAL.raw);
        sink.done(false);
        return undefined;
      }
      return new FrontExchange(core, sink, method, head, extra);
    },
    upgrade(req, socket, head, fwd) {
      forwardUpgrade(core, req, socket, head, fwd);
    },
    close() {
      core.agent.destroy();
      // Ends pooled connections and fails any request still in flight.
      core.pool?.destroy();
      for (const s of core.tunnels) s.destroy();
      core.tunnels.clear();
    },
  };
}
