// The relay↔desk multiplexer: visitor streams over one connection, with per-stream credit
// windows, half-close, reset, pings and GOAWAY. Wire format: frames.ts.
export type { MuxCloseCode, MuxCloseReason, MuxErrorCode } from './errors.js';
export { FrameDecoder, MUX_VERSION, WIRE_CODES } from './frames.js';
export { MUX_DEFAULTS, type MuxOptions } from './options.js';
export { createMuxSession, type MuxSession } from './session.js';
export { MuxStream } from './stream.js';
