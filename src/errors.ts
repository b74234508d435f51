// PortholeError: every failure porthole reports carries a stable `code` callers match on
// (never the message). Each code is listed, with its meaning and fix, in docs/errors.md.

/** Stable error codes, grouped by where they surface. */
export const ERROR_CODES = {
  // HTTP — the gateway's answers (status in parentheses in docs/errors.md)
  BAD_REQUEST: 400,
  TRANSFER_CODING_UNSUPPORTED: 501,
  REQUEST_TIMEOUT: 408,
  HEADERS_TOO_LARGE: 431,
  HOST_NOT_ALLOWED: 403,
  ORIGIN_NOT_ALLOWED: 403,
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  AUTH_REVOKED: 401,
  CODE_INVALID: 401,
  SCOPE_DENIED: 403,
  // Pairing and devices (docs/pairing.md)
  DEVICE_PENDING: 403,
  DEVICE_NOT_FOUND: 404,
  DEVICE_LIMIT: 409,
  CREDENTIAL_NOT_ACCEPTED: 401,
  USER_NOT_ALLOWED: 403,
  CLIENT_ADDRESS_UNKNOWN: 400,
  RATE_LIMITED: 429,
  CLIENT_BUSY: 429,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  TARGET_UNAVAILABLE: 502,
  TARGET_TIMEOUT: 504,
  GATEWAY_CLOSED: 503,
  INTERNAL: 500,
  // Configuration and start-up (CLI exit code 2 for usage/config, 1 otherwise)
  CONFIG_INVALID: 0,
  CONFIG_SECRET_IN_FILE: 0,
  INVALID_ARGUMENT: 0,
  TARGET_INVALID: 0,
  TOKEN_WEAK: 0,
  TOKEN_MISSING: 0,
  PASSWORD_NOT_SET: 0,
  PASSWORD_WEAK: 0,
  SECRET_FILE_INSECURE: 0,
  SECRET_FILE_UNREADABLE: 0,
  KEYRING_UNAVAILABLE: 0,
  STATE_DIR_INSECURE: 0,
  ADDRESS_IN_USE: 0,
  LISTEN_FAILED: 0,
  GATEWAY_NOT_RUNNING: 0,
  GATEWAY_ALREADY_RUNNING: 0,
  GATEWAY_UNREACHABLE: 0,
  EXPOSURE_CONFLICT: 409,
  TOKEN_FIXED: 409,
  SETTING_LOCKED: 409,
  REGISTRATION_DENIED: 403,
  TUNNEL_PROTOCOL_ERROR: 400,
  TUNNEL_UNREACHABLE: 502,
  TUNNEL_STREAM_RESET: 502,
  TUNNEL_STREAM_REFUSED: 502,
  TUNNEL_CLOSED: 502,
  TUNNEL_BUSY: 409,
  CONSENT_REQUIRED: 403,
  SUBDOMAIN_TAKEN: 409,
  SUBDOMAIN_INVALID: 400,
  SUBDOMAIN_HELD: 409,
  // ACME certificate issuance for the tunnel name (src/acme/); 0: not an HTTP answer
  ACME_FAILED: 0,
  // `porthole proxy test`: why <url>/_porthole/ping did not answer as porthole (docs/reverse-proxy.md)
  TLS_INVALID: 0,
  DNS_OR_CONN_REFUSED: 0,
  TIMEOUT: 0,
  AUTH_BLOCKED: 0,
  NOT_PORTHOLE: 0,
  // Tailscale Serve/Funnel (docs/tailscale.md); 424: porthole's request failed because tailscale's did
  TAILSCALE_NOT_INSTALLED: 424,
  TAILSCALE_NOT_RUNNING: 424,
  TAILSCALE_NOT_LOGGED_IN: 424,
  TAILSCALE_HTTPS_DISABLED: 424,
  TAILSCALE_FUNNEL_DISABLED: 424,
  TAILSCALE_PERMISSION_DENIED: 403,
  TAILSCALE_ROUTE_CONFLICT: 409,
  TAILSCALE_FAILED: 424,
  TAILSCALE_PEER_UNVERIFIED: 403,
  // SSH tunnel and remote CLI mode (docs/ssh.md)
  SSH_TARGET_INVALID: 0,
  SSH_NOT_INSTALLED: 0,
  SSH_HOST_KEY_UNVERIFIED: 0,
  SSH_AUTH_FAILED: 0,
  SSH_FORWARD_FAILED: 0,
  SSH_UNREACHABLE: 0,
  REMOTE_UNREACHABLE: 0,
  // Control plane /_porthole/ws and the client SDK (docs/control-plane.md); 0: not an HTTP answer
  CONTROL_TOO_MANY_PENDING: 429,
  CONTROL_HANDSHAKE_TIMEOUT: 0,
  CONTROL_BAD_FRAME: 0,
  CONTROL_NONCE_INVALID: 0,
  CONTROL_BINDING_MISMATCH: 0,
  CONTROL_AUTH_UNSUPPORTED: 0,
  CONTROL_PROTOCOL_UNSUPPORTED: 0,
  CONTROL_ALREADY_CONNECTED: 0,
  CONTROL_UNKNOWN_METHOD: 0,
  CONTROL_BUSY: 0,
  CONTROL_SLOW_CONSUMER: 0,
  CONTROL_TIMEOUT: 0,
  CONTROL_DISCONNECTED: 0,
  CONTROL_CLOSED: 0,
  CONTROL_CONNECT_FAILED: 0,
  CONTROL_INSECURE_URL: 0,
  TLS_PIN_MISMATCH: 0,
  TLS_PIN_INVALID: 0,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface PortholeErrorOptions {
  /** HTTP status; defaults to the code's status in ERROR_CODES (or 500). */
  status?: number;
  /** Whether the message may be shown to remote clients. Default: true for 4xx. */
  expose?: boolean;
  cause?: unknown;
  /** Extra machine-readable detail, e.g. every problem found in a config file. */
  details?: string[];
  /** Seconds the client should wait (RATE_LIMITED, CLIENT_BUSY). */
  retryAfter?: number;
}

export class PortholeError extends Error {
  override readonly name = 'PortholeError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly details: string[] | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: PortholeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? (ERROR_CODES[code] || 500);
    this.expose = options.expose ?? (this.status >= 400 && this.status < 500);
    this.details = options.details;
    this.retryAfter = options.retryAfter;
  }
}

export function isPortholeError(err: unknown, code?: ErrorCode): err is PortholeError {
  return err instanceof PortholeError && (code === undefined || err.code === code);
}

/** The JSON body of an HTTP error answer: `{"error":{"code","message"}}`. */
export function errorBody(err: PortholeError): string {
  const message = err.expose ? err.message : 'internal error';
  const body: { code: string; message: string; retryAfter?: number; details?: string[] } = { code: err.code, message };
  if (err.retryAfter !== undefined) body.retryAfter = err.retryAfter;
  // Every problem, one per entry (e.g. CONFIG_INVALID from the settings API), when shown at all.
  if (err.expose && err.details !== undefined) body.details = err.details;
  return JSON.stringify({ error: body });
}
