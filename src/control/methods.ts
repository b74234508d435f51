// The control plane's method and event registry: what apps add through
// `gateway.control.method()` and `publish()`, plus the built-ins (health, status,
// token.rotate). Handlers get the caller's identity; a method declares the scope it needs.
import { PortholeError, isPortholeError } from '../errors.js';
import type { ErrorShape } from './wire.js';

export interface MethodContext {
  /** The session's id (also in its hello). */
  clientId: string;
  /** Who is calling: "owner" for the master token or its sessions, else the credential's subject. */
  sub: string;
  /** How the session authenticated: hmac | token | session | device | trusted-proxy | none. */
  cred: string;
  scope: 'admin' | 'read';
  deviceName: string | undefined;
}

export type MethodHandler = (params: unknown, ctx: MethodContext) => unknown;

export interface MethodOptions {
  /** Scope a caller needs: "read" methods are open to read-only sessions too. Default "admin". */
  scope?: 'admin' | 'read';
}

export interface MethodEntry {
  handler: MethodHandler;
  scope: 'admin' | 'read';
}

/**
 * An error a method handler throws to answer with a stable code. Other errors become
 * INTERNAL (their message is not shown), except PortholeErrors whose message is safe.
 */
export class ControlMethodError extends Error {
  override readonly name = 'ControlMethodError';
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(code)) throw new PortholeError('INVALID_ARGUMENT', `invalid error code "${code}": use UPPER_SNAKE_CASE`);
  }
}

const NAME_RE = /^[a-zA-Z][a-zA-Z0-9_.-]{0,127}$/;

export function checkName(kind: 'method' | 'event', name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid ${kind} name "${String(name)}": letters, digits, "_", "." and "-", starting with a letter`);
  }
  if (name === 'connect' || name.startsWith('connect.')) {
    throw new PortholeError('INVALID_ARGUMENT', `"${name}" is reserved for the handshake`);
  }
}

/** The error frame body for whatever a handler threw. */
export function errorShape(err: unknown): ErrorShape {
  if (err instanceof ControlMethodError) return { code: err.code, message: err.message, retryable: err.retryable };
  if (isPortholeError(err)) {
    const shape: ErrorShape = {
      code: err.code,
      message: err.expose ? err.message : 'internal error',
      retryable: err.status >= 500 || err.status === 429,
    };
    if (err.retryAfter !== undefined) shape.retryAfter = err.retryAfter;
    return shape;
  }
  return { code: 'INTERNAL', message: 'internal error', retryable: true };
}
