// The control plane's wire protocol (DESIGN §4, docs/control-plane.md): frame shapes, close
// codes, limits and the proof message. Pure, with no Node imports: the server
// (src/control/) and the SDK (src/client/, Node and browser) both build on it.

/** The protocol versions this build speaks. A client offers [minProtocol, maxProtocol]. */
export const PROTOCOL_MIN = 1;
export const PROTOCOL_MAX = 1;

export const CONTROL_PATH = '/_porthole/ws';

/** Close codes (DESIGN §4). A client reconnects after none of 4001/4003/4008/4029 without new credentials. */
export const CLOSE = {
  /** Normal closure (either side, or the server shutting down). */
  normal: 1000,
  /** The server is stopping; reconnecting later may succeed. */
  goingAway: 1001,
  /** A frame that is not valid JSON of a known shape, or not `connect` first. */
  protocolError: 1002,
  /** A binary frame: the protocol is JSON text only. */
  unsupportedData: 1003,
  /** A frame over the size limit (64 KiB before authentication). Sent by `ws` itself. */
  tooBig: 1009,
  /** The peer cannot keep up with events (its send buffer passed the limit). */
  tryAgainLater: 1013,
  authFailed: 4001,
  revoked: 4003,
  handshakeTimeout: 4008,
  banned: 4029,
} as const;

/** Close codes after which a client must not reconnect with the same credential. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CLOSE.authFailed, CLOSE.revoked, CLOSE.handshakeTimeout, CLOSE.banned]);

export interface ErrorShape {
  code: string;
  message: string;
  /** Whether the same request may succeed if retried later. */
  retryable: boolean;
  /** Seconds to wait (RATE_LIMITED). */
  retryAfter?: number;
}

export interface ReqFrame {
  type: 'req';
  id: string;
  method: string;
  params?: unknown;
}

export type ResFrame =
  | { type: 'res'; id: string; ok: true; payload: unknown }
  | { type: 'res'; id: string; ok: false; error: ErrorShape };

export interface EventFrame {
  type: 'event';
  event: string;
  payload?: unknown;
  /** Per-session sequence number of published events (gaps mean events were missed). */
  seq?: number;
}

export type Frame = ReqFrame | ResFrame | EventFrame;

/** `connect.challenge` payload: the server speaks first. */
export interface Challenge {
  nonce: string;
  ts: number;
  /**
   * Channel bindings the server can verify: ["tls-exporter"] when the server itself
   * terminates TLS for this connection, [] otherwise (plain HTTP, or behind a proxy that
   * terminates TLS).
   */
  bindings: string[];
}

export type Binding = 'tls-exporter' | 'none';

/** How a client proves its credential in `connect` (DESIGN §4). */
export type ConnectAuth =
  | { scheme: 'hmac'; proof: string; binding: Binding }
  | { scheme: 'token'; token: string }
  | { scheme: 'session' }
  | { scheme: 'device'; deviceId: string; signature: string };

export interface ConnectParams {
  nonce: string;
  minProtocol: number;
  maxProtocol: number;
  deviceName?: string;
  auth: ConnectAuth;
}

export interface HelloPayload {
  clientId: string;
  protocol: number;
  methods: string[];
  events: string[];
  /** The server pings this often; a peer silent for two intervals is dropped. */
  heartbeatMs: number;
  /** Largest frame accepted now that the connection is authenticated. */
  maxFrameBytes: number;
  scope: 'admin' | 'read';
  server: { id: string; version: string };
}

/** RFC 5705 / RFC 8446 §7.5 exporter label and length for the channel binding. */
export const EXPORTER_LABEL = 'EXPORTER-porthole-control-v1';
export const EXPORTER_LENGTH = 32;

/** Largest deviceName accepted, in characters. */
export const MAX_DEVICE_NAME = 64;

/**
 * The bytes the HMAC proof covers, as UTF-8 text. Every field is fixed-alphabet or bounded,
 * and joined with newlines, which none of them may contain:
 *
 *   porthole-control-v1 \n nonce \n ts \n binding \n exporter(base64url or "") \n deviceName
 *
 * The proof is HMAC-SHA256 keyed by SHA-256(token) (so a server that keeps only digests of
 * retired tokens can still tell "rotated" from "wrong"), base64url without padding.
 */
export function proofMessage(p: { nonce: string; ts: number; binding: Binding; exporter: string; deviceName: string }): string {
  return ['porthole-control-v1', p.nonce, String(p.ts), p.binding, p.exporter, p.deviceName].join('\n');
}

/** Parses one text frame; undefined when it is not a frame of a known shape. */
export function parseFrame(text: string): Frame | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const f = v as Record<string, unknown>;
  if (f['type'] === 'req') {
    if (!isId(f['id']) || typeof f['method'] !== 'string' || f['method'].length === 0 || f['method'].length > 128) return undefined;
    return f as unknown as ReqFrame;
  }
  if (f['type'] === 'res') {
    if (!isId(f['id']) || typeof f['ok'] !== 'boolean') return undefined;
    if (f['ok'] === false) {
      const e = f['error'] as Record<string, unknown> | undefined;
      if (typeof e !== 'object' || e === null || typeof e['code'] !== 'string' || typeof e['message'] !== 'string') return undefined;
    }
    return f as unknown as ResFrame;
  }
  if (f['type'] === 'event') {
    if (typeof f['event'] !== 'string' || f['event'].length === 0) return undefined;
    return f as unknown as EventFrame;
  }
  return undefined;
}

function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 64;
}

/** Parses the reason of a 4029 close ("RATE_LIMITED retry-after=N"): seconds, or undefined. */
export function retryAfterOf(reason: string): number | undefined {
  const m = /retry-after=(\d+)/.exec(reason);
  return m ? Number(m[1]) : undefined;
}
