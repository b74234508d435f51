// The SDK's one error type. `code` is stable (docs/errors.md, or an app's own method
// codes); match on it, never on the message. No Node imports: shared by both entries.
import { CLOSE, retryAfterOf } from '../control/wire.js';

export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: string,
    message: string,
    /** Whether the same call may succeed later (the SDK retries connections only when true). */
    readonly retryable = false,
    /** Seconds to wait before trying again (RATE_LIMITED). */
    readonly retryAfter?: number,
    /** The WebSocket close code that ended the connection, when one did. */
    readonly closeCode?: number,
  ) {
    super(message);
  }
}

/** The error a close code stands for; `reason` starts with the server's error code. */
export function errorForClose(code: number, reason: string): ControlError {
  const named = /^[A-Z][A-Z0-9_]+/.exec(reason)?.[0];
  switch (code) {
    case CLOSE.authFailed:
      return new ControlError(named ?? 'AUTH_INVALID', `authentication failed (${reason || code})`, false, undefined, code);
    case CLOSE.revoked:
      return new ControlError('AUTH_REVOKED', 'the credential was rotated or revoked; connect with the new one', false, undefined, code);
    case CLOSE.handshakeTimeout:
      return new ControlError('CONTROL_HANDSHAKE_TIMEOUT', 'the handshake did not finish in time', false, undefined, code);
    case CLOSE.banned: {
      const after = retryAfterOf(reason);
      return new ControlError('RATE_LIMITED', `too many failed attempts from this client; retry after ${after ?? '?'} s`, after !== undefined, after, code);
    }
    case CLOSE.protocolError:
    case CLOSE.unsupportedData:
    case CLOSE.tooBig:
      return new ControlError(named ?? 'CONTROL_BAD_FRAME', `the gateway closed the connection: protocol error (${reason || code})`, false, undefined, code);
    default:
      return new ControlError('CONTROL_DISCONNECTED', `the connection closed (${code}${reason ? ` ${reason}` : ''})`, true, undefined, code);
  }
}
