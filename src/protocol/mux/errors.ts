// How the mux reports failures: a session ends with a MuxCloseReason (a stable code and a
// message), and a stream fails with a PortholeError whose code says why.
import { PortholeError } from '../../errors.js';

/** Why a session ended. */
export type MuxCloseCode =
  /** close() was called on this side. */
  | 'CLOSED'
  /** After a GOAWAY (either side's), the last stream finished. */
  | 'GOAWAY'
  /** The peer closed the connection (its GOAWAY code, if it sent one, is in the message). */
  | 'PEER_CLOSED'
  /** The underlying socket failed. */
  | 'SOCKET_ERROR'
  /** Nothing arrived for deadAfterMs despite pings. */
  | 'DEAD_LINK'
  /** The peer broke the protocol (bad frame, over-window DATA, …); it was sent a GOAWAY saying so. */
  | 'PROTOCOL_ERROR';

export interface MuxCloseReason {
  code: MuxCloseCode;
  message: string;
  cause?: unknown;
}

/** Codes of stream and ping errors (listed in ERROR_CODES and docs/errors.md). */
export type MuxErrorCode =
  /** The peer reset the stream (RST); `rstCode` on the stream holds its wire code. */
  | 'TUNNEL_STREAM_RESET'
  /** The stream was not processed (GOAWAY, stream limit, no listener); retrying elsewhere is safe. */
  | 'TUNNEL_STREAM_REFUSED'
  /** The session ended while the stream or ping was in progress; the cause is the close reason. */
  | 'TUNNEL_CLOSED';

export function muxError(code: MuxErrorCode, message: string, cause?: unknown): PortholeError {
  return new PortholeError(code, message, { status: 502, expose: false, cause });
}
