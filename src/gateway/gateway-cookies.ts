// The session cookie as the gateway sets it: whether a request counts as secure (that picks the
// cookie's name and Secure flag) and starting a session for a credential.
import type { IncomingMessage } from 'node:http';
import type { TailscalePeer } from '../auth/classify.js';
import { sessionCookieHeader } from '../auth/credentials.js';
import { normalizeAddress } from '../auth/ip.js';
import type { SessionStore } from '../auth/sessions.js';
import type { PipelineState } from './pipeline.js';

export interface SessionCookies {
  /** Whether the request came over TLS: ours, the tunnel's, Tailscale's or a trusted proxy's. */
  isSecure(req: IncomingMessage): boolean;
  /** A new session for `credential`; its Set-Cookie header (name and Secure from this request). */
  startSession(req: IncomingMessage, credential: string, scope: 'admin' | 'read'): string;
}

export interface SessionCookieDeps {
  sessions: SessionStore;
  pipeline: Pick<PipelineState, 'cookieName' | 'isTrustedProxy'>;
  /** Sockets carrying a tunnel visitor (markTunnelSocket). */
  tunnelSockets: WeakMap<object, string>;
  /** Requests porthole's Tailscale listener verified (markTailscaleRequest). */
  tailscaleRequests: WeakMap<IncomingMessage, TailscalePeer>;
}

export function createSessionCookies(deps: SessionCookieDeps): SessionCookies {
  const { sessions, pipeline, tunnelSockets, tailscaleRequests } = deps;

  function isSecure(req: IncomingMessage): boolean {
    return (
      Boolean((req.socket as { encrypted?: boolean }).encrypted) ||
      tunnelSockets.has(req.socket) ||
      tailscaleRequests.get(req)?.secure === true ||
      // Behind a TLS-terminating trusted proxy: the same rule the pipeline uses for `proto`,
      // so the cookie set (Secure, __Host-) is the one the next request is read with.
      (!tailscaleRequests.has(req) &&
        req.headers['x-forwarded-proto'] === 'https' &&
        pipeline.isTrustedProxy(normalizeAddress(req.socket.remoteAddress)))
    );
  }

  /** A new session for `credential`; its Set-Cookie header (name and Secure from this request). */
  function startSession(req: IncomingMessage, credential: string, scope: 'admin' | 'read'): string {
    const { id, maxAgeSeconds } = sessions.create(credential, scope);
    const secure = isSecure(req);
    return sessionCookieHeader(pipeline.cookieName(secure), id, maxAgeSeconds, secure);
  }

  return { isSecure, startSession };
}
