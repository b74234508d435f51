// The control plane's built-in methods (docs/control-plane.md "Methods"): health, status
// (the remote-access overview, what `porthole status` shows) and token.rotate (admin).
import type { ControlPlane } from './server.js';

export interface BuiltinDeps {
  /** The gateway's fullStatus(): never contains a secret. */
  status: () => Promise<Record<string, unknown>>;
  /** gateway.rotateToken(): closes every session of the old token with 4003, the caller's too. */
  rotate: () => { sessionsEnded: number; connectionsClosed: number };
}

export function registerBuiltins(plane: ControlPlane, deps: BuiltinDeps): void {
  plane.method('health', () => ({ status: 'ok' }), { scope: 'read' });
  plane.method('status', () => deps.status(), { scope: 'read' });
  // The answer never carries the new token (no endpoint returns it): the caller, whose own
  // session ends with 4003 right after this answer, reads it on the desk (`porthole token show`).
  plane.method('token.rotate', () => deps.rotate(), { scope: 'admin' });
}
