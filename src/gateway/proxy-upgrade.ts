// Upgrades (WebSocket, RFC 6455 §4; any protocol in Upgrade, RFC 9110 §7.8): 101 splices, else relay.
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectionOptions, isHopByHop, requestHeaders } from './hop-by-hop.js';
import type { ForwardInfo } from './proxy.js';
import {
  armTimer,
  type Core,
  canReplay,
  clearTimer,
  type Exchange,
  errorCode,
  onUpstreamFinish,
  sendUpstream,
  StallClock,
  stateOf,
  tag,
  targetPath,
} from './proxy-core.js';
import { type ErrorAnswer, INTERNAL, TIMEOUT, UNAVAILABLE } from './proxy-errors.js';

/** Forwards one upgrade request; what Proxy.upgrade does. */
export function forwardUpgrade(core: Core, req: IncomingMessage, socket: Duplex, head: Buffer, fwd: ForwardInfo): void {
  const ex = new UpgradeExchange(core, req, socket, head, fwd);
  tag(socket, ex);
  socket.on('error', ignoreError);
  socket.on('close', onClientSocketClose);
  (socket as Partial<Socket>).setNoDelay?.(true);
  ex.send();
}

class UpgradeExchange implements Exchange {
  up: ClientRequest | null = null;
  /** The target's response when it refused the upgrade (non-101). */
  upRes: IncomingMessage | null = null;
  upSocket: Duplex | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  /** The client has its answer (101, a relayed refusal, or an error) or is gone. */
  settled = false;
  /** Run while one spliced side's writes wait on a reader that stopped (or left). */
  toTarget: StallClock | null = null;
  toClient: StallClock | null = null;
  retried = false;
  readonly headers: OutgoingHttpHeaders;
  readonly path: string;

  constructor(
    readonly core: Core,
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    fwd: ForwardInfo,
  ) {
    this.headers = requestHeaders(fwd, core.hostHeader, false, true);
    this.path = targetPath(core, fwd.path);
  }

  send(): void {
    let up: ClientRequest;
    try {
      // Through the pool like any request: a 101 takes the socket out of it ('agentRemove'),
      // a refusal returns it.
      up = sendUpstream(this);
    } catch (err) {
      this.core.logger?.log('error', 'upgrade not forwarded: invalid request line or header', { error: errorCode(err) });
      this.answer(INTERNAL);
      return;
    }
    this.up = up;
    tag(up, this);
    up.on('upgrade', onUpgradeAccepted);
    up.on('response', onUpgradeRefused);
    up.on('error', onUpgradeUpstreamError);
    up.on('finish', onUpstreamFinish);
    up.end();
    // 'finish' waits for a pooled connection: time the wait for one too.
    armTimer(this);
  }

  /** 101: relay the target's head as it sent it, then splice the two connections. */
  accepted(upSocket: Duplex, upRes: IncomingMessage, upHead: Buffer): void {
    clearTimer(this);
    const client = this.socket;
    if (this.settled || client.destroyed) {
      upSocket.destroy();
      return;
    }
    this.settled = true;
    this.upSocket = upSocket;
    tag(upSocket, this);
    upSocket.on('error', ignoreError);
    upSocket.on('close', onTargetSocketClose);
    const s = upSocket as Partial<Socket>;
    s.setNoDelay?.(true);
    s.setTimeout?.(0); // a reused pooled socket may carry the pool's idle timeout
    // Switching Protocols is end-to-end: its Connection/Upgrade/Sec-WebSocket-* fields stay.
    let head = `HTTP/${upRes.httpVersion} 101 ${upRes.statusMessage ?? 'Switching Protocols'}\r\n`;
    const raw = upRes.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    client.write(`${head}\r\n`, 'latin1');
    if (upHead.length > 0) client.write(upHead);
    if (this.head.length > 0) upSocket.write(this.head);
    this.core.tunnels.add(client);
    // A quiet connection may stay open for ever; one whose reader stops taking what waits for
    // it (a peer gone behind a full window, a client that never reads) ends after core.stallMs.
    const stalled = (): void => this.stalled();
    this.toTarget = new StallClock(this.core.stallMs, stalled);
    this.toClient = new StallClock(this.core.stallMs, stalled);
    client.on('pause', onClientPaused);
    upSocket.on('drain', onTargetDrained);
    upSocket.on('pause', onTargetPaused);
    client.on('drain', onClientDrained);
    upSocket.pipe(client);
    client.pipe(upSocket);
  }

  stalled(): void {
    this.toTarget?.stop();
    this.toClient?.stop();
    this.core.logger?.log('warn', 'upgraded connection stalled', { target: this.core.description, stallMs: this.core.stallMs });
    this.socket.destroy();
    this.upSocket?.destroy();
  }

  /** Not 101: relay that response (hop-by-hop stripped, close-delimited) and close. */
  refused(upRes: IncomingMessage): void {
    clearTimer(this);
    const client = this.socket;
    if (this.settled || client.destroyed) {
      this.up?.destroy();
      return;
    }
    this.settled = true;
    this.upRes = upRes;
    // Never back into the pool: `Connection: upgrade` made Node keep this connection alive,
    // and what the client sends after an upgrade request is not HTTP the next user should
    // share a connection with (request smuggling; docs/security.md).
    if (this.up) this.up.shouldKeepAlive = false;
    tag(upRes, this);
    let head = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? ''}\r\n`;
    const raw = upRes.rawHeaders;
    const listed = connectionOptions(upRes.headers.connection);
    for (let i = 0; i < raw.length; i += 2) {
      if (!isHopByHop(raw[i]!.toLowerCase(), listed)) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    client.write(`${head}Connection: close\r\n\r\n`, 'latin1');
    client.resume(); // drain what the client still sends, so its FIN is seen and the socket closes
    upRes.on('close', onRefusalBodyClose);
    upRes.pipe(client);
  }

  onUpstreamError(up: ClientRequest, err: NodeJS.ErrnoException): void {
    if (up !== this.up) return;
    clearTimer(this);
    if (this.settled) {
      if (this.upRes !== null) this.socket.destroy();
      return;
    }
    if (canReplay(this, up, err)) {
      this.retried = true;
      this.send();
      return;
    }
    this.core.logger?.log('warn', 'target unavailable for upgrade', { target: this.core.description, error: errorCode(err) });
    this.answer(UNAVAILABLE);
  }

  timedOut(): void {
    if (this.settled) return;
    this.core.logger?.log('warn', 'target did not answer the upgrade in time', {
      target: this.core.description,
      timeoutMs: this.core.timeoutMs,
    });
    this.answer(TIMEOUT);
    this.up?.destroy();
  }

  answer(a: ErrorAnswer): void {
    this.settled = true;
    const client = this.socket;
    if (client.destroyed) return;
    client.resume();
    client.end(a.raw);
  }

  /** Either side went away: the other follows, after flushing what it already has to send. */
  clientClosed(): void {
    clearTimer(this);
    this.toClient?.stop();
    this.settled = true;
    this.core.tunnels.delete(this.socket);
    const up = this.up;
    if (up !== null && !up.destroyed) up.destroy();
    if (this.upSocket !== null) closeAfterFlush(this.upSocket, this.toTarget);
    if (this.upRes !== null) this.upRes.destroy();
  }
}

function onUpgradeAccepted(this: ClientRequest, upRes: IncomingMessage, upSocket: Duplex, upHead: Buffer): void {
  stateOf<UpgradeExchange>(this).accepted(upSocket, upRes, upHead);
}

function onUpgradeRefused(this: ClientRequest, upRes: IncomingMessage): void {
  stateOf<UpgradeExchange>(this).refused(upRes);
}

function onUpgradeUpstreamError(this: ClientRequest, err: NodeJS.ErrnoException): void {
  stateOf<UpgradeExchange>(this).onUpstreamError(this, err);
}

function onClientSocketClose(this: Duplex): void {
  stateOf<UpgradeExchange>(this).clientClosed();
}

function onTargetSocketClose(this: Duplex, hadError?: boolean): void {
  const ex = stateOf<UpgradeExchange>(this);
  ex.toTarget?.stop();
  if (hadError === true) ex.socket.destroy();
  else closeAfterFlush(ex.socket, ex.toClient);
}

// Each direction's clock: started when pipe() pauses the reading side because the writing side
// pushed back, stopped by that side's 'drain'.
function onClientPaused(this: Duplex): void {
  if (!this.destroyed) stateOf<UpgradeExchange>(this).toTarget?.wait();
}

function onTargetDrained(this: Duplex): void {
  stateOf<UpgradeExchange>(this).toTarget?.stop();
}

function onTargetPaused(this: Duplex): void {
  if (!this.destroyed) stateOf<UpgradeExchange>(this).toClient?.wait();
}

function onClientDrained(this: Duplex): void {
  stateOf<UpgradeExchange>(this).toClient?.stop();
}

function onRefusalBodyClose(this: IncomingMessage): void {
  if (!this.complete) stateOf<UpgradeExchange>(this).socket.destroy();
}

/**
 * End `s` once its queued writes are out, then destroy it (its peer has already gone). Its
 * clock keeps running meanwhile: a reader that never takes them does not keep `s` for ever.
 */
function closeAfterFlush(s: Duplex, clock: StallClock | null): void {
  if (s.destroyed) return;
  if (s.writableFinished) {
    s.destroy();
    return;
  }
  if (s.writableNeedDrain) clock?.wait();
  s.once('finish', destroyThis);
  if (!s.writableEnded) s.end();
}

function destroyThis(this: Duplex): void {
  this.destroy();
}

// Errors on both sockets of a tunnel are followed by 'close', where the other side is torn down.
function ignoreError(): void {}
