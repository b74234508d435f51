// The control plane's handshake (DESIGN §4, docs/control-plane.md): checks the `connect` frame
// against the challenge, proves its credential (hmac, token, session, device), then opens the
// session with the hello. Wrong credentials feed the same ban table as HTTP.
import type { WebSocket } from 'ws';
import type { TokenCheck } from '../gateway/token-keeper.js';
import type { MethodEntry } from './methods.js';
import { checkHmacProof } from './proof.js';
import type { ControlOptions, DeviceVerdict } from './server.js';
import { badFrame, closeWith, reason, refuse, send, type Session, TrackedSession } from './session.js';
import { CLOSE, type ConnectParams, type HelloPayload, MAX_DEVICE_NAME, PROTOCOL_MAX, PROTOCOL_MIN, type ReqFrame } from './wire.js';

/** What the handshake needs from the control plane that runs it (src/control/server.ts). */
export interface HandshakeDeps {
  options: ControlOptions;
  /** Registered methods and declared events: the hello lists those the session's scope may use. */
  methods: ReadonlyMap<string, MethodEntry>;
  events: ReadonlyMap<string, 'admin' | 'read'>;
  heartbeatMs: number;
  /** Largest frame once authenticated. */
  maxFrame: number;
  /** Gives back the unauthenticated slot the socket held under its client key. */
  release(key: string): void;
}

/** Returns the handler for a not-yet-authenticated session's `connect` request. */
export function createHandshake(deps: HandshakeDeps): (s: Session, frame: ReqFrame) => void {
  const { options, methods, events, heartbeatMs, maxFrame, release } = deps;
  const { token, bans, tracker, logger } = options;

  /** A wrong credential: counted toward the ban, closing 4001 — or 4029 on the failure that bans. */
  function countFailure(s: Session, id: string, code: 'AUTH_INVALID'): void {
    const state = bans.recordFailure(s.ctx.key);
    logger.log('info', 'control auth failed', { ingress: s.ctx.ingress, banned: state.banned });
    if (state.banned) {
      refuse(s, id, { code: 'RATE_LIMITED', message: 'too many failed attempts; try again later', retryable: true, retryAfter: state.retryAfterSeconds }, CLOSE.banned);
    } else {
      refuse(s, id, { code, message: 'invalid credential', retryable: false }, CLOSE.authFailed);
    }
  }

  function onTokenCheck(s: Session, id: string, check: TokenCheck, cred: string): Identity | undefined {
    if (check === 'ok') return { credential: token.credential(), sub: 'owner', cred, scope: 'admin' };
    if (check === 'stale') {
      // Not a guess: the right token before a rotation. Refused, never counted (DESIGN §3).
      refuse(s, id, { code: 'AUTH_REVOKED', message: 'this token was rotated; use the new one', retryable: false }, CLOSE.revoked);
    } else {
      countFailure(s, id, 'AUTH_INVALID');
    }
    return undefined;
  }

  type Identity = { credential: string | undefined; sub: string; cred: string; scope: 'admin' | 'read'; session?: string };

  function onDevice(s: Session, id: string, r: DeviceVerdict): Identity | undefined {
    if (r === undefined) {
      countFailure(s, id, 'AUTH_INVALID');
      return undefined;
    }
    if ('refused' in r) {
      refuse(s, id, { ...r.refused, retryable: false }, r.refused.code === 'AUTH_REVOKED' ? CLOSE.revoked : CLOSE.authFailed);
      return undefined;
    }
    return { ...r, cred: 'device' };
  }

  function authenticate(s: Session, id: string, p: ConnectParams): Identity | undefined {
    const auth = p.auth;
    const ctx = s.ctx;
    if (ctx.open) return { credential: undefined, sub: 'anonymous', cred: 'none', scope: 'admin' };
    const notAccepted = (): undefined => {
      refuse(s, id, { code: 'CREDENTIAL_NOT_ACCEPTED', message: 'porthole tokens and paired devices are not accepted in trusted-proxy mode; sign in through the proxy', retryable: false }, CLOSE.authFailed);
      return undefined;
    };
    switch (auth.scheme) {
      case 'hmac': {
        if (!ctx.tokenAccepted) return notAccepted();
        if (typeof auth.proof !== 'string' || (auth.binding !== 'tls-exporter' && auth.binding !== 'none')) return badFrame(s, id);
        // The binding must be the one this side can verify: a proof made for a TLS connection
        // that ends elsewhere (a relayed handshake) or without one on our TLS fails here.
        const want = s.exporter === undefined ? 'none' : 'tls-exporter';
        if (auth.binding !== want) {
          refuse(s, id, { code: 'CONTROL_BINDING_MISMATCH', message: `this connection needs binding "${want}"`, retryable: false }, CLOSE.authFailed);
          return undefined;
        }
        const check = checkHmacProof(token, {
          nonce: p.nonce,
          ts: s.ts,
          binding: auth.binding,
          exporter: s.exporter ?? '',
          deviceName: p.deviceName ?? '',
          proof: auth.proof,
        });
        return onTokenCheck(s, id, check, 'hmac');
      }
      case 'token': {
        if (!ctx.tokenAccepted) return notAccepted();
        if (typeof auth.token !== 'string' || auth.token.length > 512) return badFrame(s, id);
        if (auth.token.startsWith('phd_') && options.verifyDeviceToken) return onDevice(s, id, options.verifyDeviceToken(auth.token));
        return onTokenCheck(s, id, token.check(auth.token), 'token');
      }
      case 'session': {
        const a = ctx.ambient;
        // The session may have ended (logout, expiry) between the upgrade and this frame.
        const valid =
          a !== undefined &&
          (a.credential === undefined || a.credential === token.credential() || options.isCredentialValid(a.credential)) &&
          (a.session === undefined || options.isSessionLive?.(a.session) !== false);
        if (!valid) {
          refuse(s, id, { code: 'AUTH_REQUIRED', message: 'no valid session on this connection', retryable: false }, CLOSE.authFailed);
          return undefined;
        }
        return a;
      }
      case 'device': {
        // Devices paired before a switch to trusted-proxy mode still sit in devices.json: like
        // their bearers over HTTP, their signatures are no way around the SSO.
        if (!ctx.tokenAccepted) return notAccepted();
        if (typeof auth.deviceId !== 'string' || typeof auth.signature !== 'string') return badFrame(s, id);
        const r = options.verifyDevice?.({ deviceId: auth.deviceId, signature: auth.signature, nonce: p.nonce, ts: s.ts, exporter: s.exporter ?? '' });
        if (!options.verifyDevice) {
          refuse(s, id, { code: 'CONTROL_AUTH_UNSUPPORTED', message: 'device signatures are not enabled on this gateway', retryable: false }, CLOSE.authFailed);
          return undefined;
        }
        return onDevice(s, id, r);
      }
      default:
        refuse(s, id, { code: 'CONTROL_AUTH_UNSUPPORTED', message: 'unknown auth scheme', retryable: false }, CLOSE.authFailed);
        return undefined;
    }
  }

  function onConnect(s: Session, frame: ReqFrame): void {
    const p = frame.params as ConnectParams | undefined;
    // Single use: whatever happens next, this nonce is spent.
    const nonce = s.nonce;
    s.nonce = undefined;
    if (typeof p !== 'object' || p === null || typeof p.auth !== 'object' || p.auth === null) return void badFrame(s, frame.id);
    if (nonce === undefined || p.nonce !== nonce) {
      refuse(s, frame.id, { code: 'CONTROL_NONCE_INVALID', message: 'the nonce is not this connection’s challenge', retryable: false }, CLOSE.authFailed);
      return;
    }
    if (!Number.isInteger(p.minProtocol) || !Number.isInteger(p.maxProtocol)) return void badFrame(s, frame.id);
    const protocol = Math.min(p.maxProtocol, PROTOCOL_MAX);
    if (protocol < Math.max(p.minProtocol, PROTOCOL_MIN)) {
      refuse(s, frame.id, { code: 'CONTROL_PROTOCOL_UNSUPPORTED', message: `this gateway speaks protocol ${PROTOCOL_MIN}–${PROTOCOL_MAX}`, retryable: false }, CLOSE.protocolError);
      return;
    }
    if (p.deviceName !== undefined && (typeof p.deviceName !== 'string' || p.deviceName.length > MAX_DEVICE_NAME || /[\u0000-\u001f\u007f]/.test(p.deviceName))) {
      return void badFrame(s, frame.id);
    }
    const who = authenticate(s, frame.id, p);
    if (!who) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    s.authed = true;
    release(s.ctx.key);
    raiseFrameLimit(s.ws, maxFrame);
    s.method = { clientId: s.clientId, sub: who.sub, cred: who.cred, scope: who.scope, deviceName: p.deviceName };
    if (who.session !== undefined) s.browserSession = who.session;
    if (who.credential !== undefined) {
      const tracked = new TrackedSession(() => {
        // After the current turn: a token.rotate caller gets its answer before the close.
        setImmediate(() => closeWith(s, CLOSE.revoked, reason('AUTH_REVOKED')));
      });
      s.tracked = tracked;
      // By its browser session too (scheme "session"): logout, expiry or revocation ends it.
      tracker.add(who.credential, tracked, who.session);
    }
    const hello: HelloPayload = {
      clientId: s.clientId,
      protocol,
      methods: [...methods.keys()].filter((m) => who.scope === 'admin' || methods.get(m)?.scope === 'read'),
      events: [...events].filter(([, scope]) => who.scope === 'admin' || scope === 'read').map(([name]) => name),
      heartbeatMs,
      maxFrameBytes: maxFrame,
      scope: who.scope,
      server: { id: options.serverId, version: options.version },
    };
    send(s, { type: 'res', id: frame.id, ok: true, payload: hello });
    logger.log('info', 'control session open', { clientId: s.clientId, cred: who.cred, ingress: s.ctx.ingress });
  }

  return onConnect;
}

/**
 * After authentication the frame limit rises from the pre-auth 64 KiB. `ws` fixes maxPayload
 * per server, so this sets its receiver's limit; if that internal ever moves, the limit stays
 * at 64 KiB (stricter, never looser). test/control/server.test.ts checks a large frame passes.
 */
function raiseFrameLimit(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
}
