// One control-plane connection (src/control/server.ts): its state, the tracker's handle on it,
// and the small senders both the handshake and method dispatch answer through.
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import type { MethodContext } from './methods.js';
import type { UpgradeContext } from './server.js';
import { CLOSE, type ErrorShape } from './wire.js';

export interface Session {
  ws: WebSocket;
  ctx: UpgradeContext;
  exporter: string | undefined;
  nonce: string | undefined;
  ts: number;
  authed: boolean;
  alive: boolean;
  timer: NodeJS.Timeout | undefined;
  clientId: string;
  method: MethodContext | undefined;
  seq: number;
  inFlight: number;
  tracked: TrackedSession | undefined;
  /** The browser session (its key) that authenticated this connection, if one did. */
  browserSession?: string;
}

/** The tracker's view of a session: destroy() is "your credential was rotated or revoked". */
export class TrackedSession extends EventEmitter {
  destroyed = false;
  constructor(private readonly onRevoke: () => void) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.onRevoke();
  }
  closed(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

/** A close frame's reason: RFC 6455 §5.5 leaves it 123 bytes after the status code. */
export function reason(code: string, extra = ''): string {
  return (extra ? `${code} ${extra}` : code).slice(0, 123);
}

export function send(s: Session, frame: unknown): void {
  if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify(frame));
}

export function closeWith(s: Session, code: number, why: string): void {
  if (s.ws.readyState === WebSocket.OPEN || s.ws.readyState === WebSocket.CONNECTING) s.ws.close(code, why);
}

export function refuse(s: Session, id: string | undefined, err: ErrorShape, code: number): void {
  if (id !== undefined) send(s, { type: 'res', id, ok: false, error: err });
  const extra = err.retryAfter !== undefined ? `retry-after=${err.retryAfter}` : '';
  closeWith(s, code, reason(err.code, extra));
}

export function badFrame(s: Session, id: string | undefined): undefined {
  refuse(s, id, { code: 'CONTROL_BAD_FRAME', message: 'malformed frame', retryable: false }, CLOSE.protocolError);
  return undefined;
}
