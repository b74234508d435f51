// Pairing and devices (docs/pairing.md): issuing pairing codes, trading them for a device
// credential, listing, approving and revoking devices, and the connect URLs. One service,
// used by the HTTP API (src/gateway/endpoints.ts), the Unix socket (control-socket.ts, class
// `cli`: full admin) and the pipeline (`?code=` first loads, `phd_` bearers, device sessions).
// No answer ever carries the master token.
import { createHash, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BanTable } from '../auth/rate-limit.js';
import type { SessionStore } from '../auth/sessions.js';
import { PortholeError, isPortholeError } from '../errors.js';
import { readJsonBody } from '../gateway/json-body.js';
import { sendError, sendJson } from '../gateway/respond.js';
import { asHttpError } from '../gateway/api/common.js';
import type { ConnectionTracker } from '../gateway/tracker.js';
import type { Logger } from '../log.js';
import { appendAudit } from '../util/audit.js';
import { readSecretFile } from '../util/fs.js';
import { type CodeGrant, type CodeStore, formatShortCode } from './codes.js';
import { type ConnectStatus, connectUrlsFromStatus } from './connect-urls.js';
import {
  DEVICE_CREDENTIAL_PREFIX,
  type DeviceCheck,
  type DeviceKind,
  type DeviceRecord,
  type DeviceStore,
  type DeviceView,
  MAX_DEVICE_NAME,
  parseDevicePublicKey,
  viewDevice,
} from './devices.js';

export const PAIR_PATH = '/_porthole/api/pair';
export const PAIR_EXCHANGE_PATH = '/_porthole/api/pair/exchange';
export const DEVICES_PATH = '/_porthole/api/devices';
export const CONNECT_URLS_PATH = '/_porthole/api/connect-urls';
export const UI_PAIR_ROUTE = '/_porthole/ui/#/pair?code=';

const DAY = 24 * 3600_000;
/** Default device lifetime when a code names none: an admin credential is worth more to a thief. */
export const DEFAULT_DEVICE_TTL_MS = { admin: 90 * DAY, read: 365 * DAY } as const;
const MAX_DEVICE_TTL_MS = 3650 * DAY;

export const PAIRING_EVENTS = ['pair.completed', 'devices.changed'] as const;

export interface PairingDeps {
  codes: CodeStore;
  devices: DeviceStore;
  sessions: SessionStore;
  tracker: ConnectionTracker;
  bans: BanTable;
  publish(event: string, payload: unknown): void;
  /** audit.log; undefined: none. */
  auditFile: string | undefined;
  /** $PORTHOLE_HOME/identity (the tunnel's Ed25519 key, for its pin). */
  identityDir: string | undefined;
  logger: Logger;
  authMode: 'token' | 'password' | 'trusted-proxy' | 'none';
  /** The gateway's full status (connect URLs, TLS pins). */
  status(): Promise<Record<string, unknown>>;
  /** The master token's credential id: codes made by the desk's owner belong to it. */
  ownerCredential(): string;
  publicUrl: string | undefined;
  now?: () => number;
}

/** Who is asking, as the pipeline (or the Unix socket) established it. */
export interface PairingCaller {
  /** The credential codes and devices are attributed to; undefined: the desk's owner (the master token's, so a rotation burns them). */
  credential: string | undefined;
  sub: string;
  scope: 'admin' | 'read' | 'none';
  ingress: string;
  /** The brute-force key (DESIGN §3.2). */
  key: string;
  /** The request's own origin: the pairing link's base when the desk has no connect URL. */
  own?: string | undefined;
  /** Starts a browser session for a device; returns its Set-Cookie header (HTTP only). */
  startSession?(credential: string, scope: 'admin' | 'read'): string;
}

export interface PairOptions {
  scope?: unknown;
  expires?: unknown;
  requireApproval?: unknown;
}

export interface PairAnswer {
  code: string;
  shortCode: string;
  link: string;
  expiresAt: string;
  scope: 'admin' | 'read';
  deviceExpiresAt: string | null;
  requireApproval: boolean;
}

export interface Pins {
  tls: { spki: string; cert: string } | null;
  tunnel: { spki: string; publicKey: string } | null;
}

export interface PairingService {
  issue(options: PairOptions, caller: PairingCaller): Promise<PairAnswer>;
  exchange(body: Record<string, unknown>, caller: PairingCaller): Promise<{ body: Record<string, unknown>; headers: Record<string, string> }>;
  list(): { devices: (Omit<DeviceView, 'status'> & { status: DeviceView['status'] | 'expired' })[] };
  approve(id: string, caller: PairingCaller): { device: DeviceView };
  /** Ends the device's sessions and closes its connections (4003 on the control plane). */
  revoke(id: string, caller: PairingCaller): { revoked: true; sessionsEnded: number; connectionsClosed: number; self: boolean };
  connectUrls(): Promise<string[]>;
  pins(): Promise<Pins>;
  /** A browser's first load with `?code=`: the device (kind browser) its session belongs to. */
  pairBrowser(grant: CodeGrant, userAgent: string | undefined, ingress: string): { credential: string; scope: 'admin' | 'read' };
  /** The state of a device credential (`device:<id>`), for sessions. */
  checkCredential(credential: string): DeviceCheck;
  /** The state of a `phd_` bearer. */
  checkToken(token: string): DeviceCheck;
  /** Routes the pairing endpoints; false when `path` is not one of them. */
  handle(req: IncomingMessage, res: ServerResponse, path: string, caller: PairingCaller): boolean;
}

/** `30d`, `12h`, `never` → ms (null: never). */
export function parseExpires(value: unknown): number | null | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new PortholeError('INVALID_ARGUMENT', 'expires must be a string such as "30d", "12h" or "never"');
  const v = value.trim().toLowerCase();
  if (v === 'never' || v === 'none') return null;
  const m = /^(\d{1,5})\s*([dh])$/.exec(v);
  if (!m) throw new PortholeError('INVALID_ARGUMENT', `expires "${value.slice(0, 32)}": use a number of days or hours ("30d", "12h") or "never"`);
  const ms = Number(m[1]) * (m[2] === 'd' ? DAY : 3600_000);
  if (ms < 3600_000 || ms > MAX_DEVICE_TTL_MS) {
    throw new PortholeError('INVALID_ARGUMENT', `expires "${value.slice(0, 32)}": between 1h and 3650d (or "never")`);
  }
  return ms;
}

export function checkDeviceName(name: unknown): string {
  if (typeof name !== 'string') throw new PortholeError('BAD_REQUEST', 'name: a short name for the device, e.g. "Alice\'s phone"');
  const n = name.trim();
  if (n.length === 0 || n.length > MAX_DEVICE_NAME || /[\u0000-\u001f\u007f]/.test(n)) {
    throw new PortholeError('BAD_REQUEST', `name: 1–${MAX_DEVICE_NAME} characters, no control characters`);
  }
  return n;
}

/** "Browser (Firefox on Android)" from a User-Agent, for `?code=` first loads. */
export function browserName(ua: string | undefined): string {
  const s = ua ?? '';
  const browser = /Edg\//.test(s) ? 'Edge' : /Firefox\//.test(s) ? 'Firefox' : /Chrom(e|ium)\//.test(s) ? 'Chrome' : /Safari\//.test(s) ? 'Safari' : undefined;
  const os = /Android/.test(s) ? 'Android' : /iPhone|iPad/.test(s) ? 'iOS' : /Mac OS X/.test(s) ? 'macOS' : /Windows/.test(s) ? 'Windows' : /Linux/.test(s) ? 'Linux' : undefined;
  if (!browser && !os) return 'Browser';
  return `Browser (${[browser, os].filter(Boolean).join(' on ')})`;
}

function iso(t: number | null | undefined): string | null {
  return t === null || t === undefined ? null : new Date(t).toISOString();
}

/** Answers 405; true: the path was ours. */
function notAllowed(res: ServerResponse, allow: string): true {
  sendError(res, new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed'), { allow });
  return true;
}

export function createPairingService(deps: PairingDeps): PairingService {
  const now = deps.now ?? Date.now;
  const { codes, devices, sessions, tracker, bans, logger } = deps;
  let tunnelPin: Pins['tunnel'] = null;

  function audit(event: string, fields: Record<string, string | number | boolean | null | undefined>): void {
    if (!deps.auditFile) return;
    try {
      appendAudit(deps.auditFile, event, fields);
    } catch (err) {
      logger.log('warn', 'audit log not written', { event, error: (err as Error).message });
    }
  }

  function assertPairingAvailable(): void {
    if (deps.authMode === 'trusted-proxy') {
      throw new PortholeError('CREDENTIAL_NOT_ACCEPTED', 'pairing is not available in trusted-proxy mode: visitors sign in through the proxy');
    }
  }

  function assertAdmin(caller: PairingCaller, what: string): void {
    if (caller.scope !== 'admin') throw new PortholeError('SCOPE_DENIED', `${what} needs the admin scope`);
  }

  function deviceExpiry(grant: CodeGrant, t: number): number | null {
    if (grant.deviceExpiresAt !== undefined) return grant.deviceExpiresAt;
    return t + DEFAULT_DEVICE_TTL_MS[grant.scope];
  }

  function announce(d: DeviceRecord, ingress: string): void {
    const device = viewDevice(d);
    logger.log('info', 'device paired', { id: d.id, kind: d.kind, scope: d.scope, status: d.status, ingress });
    audit('device.paired', { id: d.id, name: d.name, kind: d.kind, scope: d.scope, status: d.status, ingress, pairedBy: d.pairedBy?.split(':')[0] });
    deps.publish('pair.completed', { device });
    deps.publish('devices.changed', { reason: 'paired', device });
  }

  async function connectUrls(): Promise<string[]> {
    return connectUrlsFromStatus((await deps.status()) as ConnectStatus, deps.publicUrl);
  }

  async function pins(): Promise<Pins> {
    const s = await deps.status();
    const t = s['tls'] as { pin?: string; fingerprint256?: string } | null | undefined;
    const tls = t && typeof t.pin === 'string' && typeof t.fingerprint256 === 'string' ? { spki: t.pin, cert: t.fingerprint256 } : null;
    if (tunnelPin === null && deps.identityDir !== undefined) {
      try {
        const pem = readSecretFile(join(deps.identityDir, 'desk-ed25519.pem'));
        if (pem !== undefined) {
          const spki = createPublicKey(pem).export({ format: 'der', type: 'spki' });
          tunnelPin = {
            spki: `sha256/${createHash('sha256').update(spki).digest('base64')}`,
            // The raw 32-byte key, base64url: the form the relay registers (docs/relay-protocol.md).
            publicKey: spki.subarray(spki.length - 32).toString('base64url'),
          };
        }
      } catch (err) {
        logger.log('warn', 'tunnel identity unreadable for its pin', { error: (err as Error).message });
      }
    }
    return { tls, tunnel: tunnelPin };
  }

  const service: PairingService = {
    async issue(options, caller) {
      assertPairingAvailable();
      assertAdmin(caller, 'pairing a device');
      const scope = options.scope === undefined ? 'admin' : options.scope;
      if (scope !== 'admin' && scope !== 'read') throw new PortholeError('INVALID_ARGUMENT', 'scope: "admin" or "read"');
      if (options.requireApproval !== undefined && typeof options.requireApproval !== 'boolean') {
        throw new PortholeError('INVALID_ARGUMENT', 'requireApproval: true or false');
      }
      const ttl = parseExpires(options.expires);
      const t = now();
      // Fixed now: the device expires at the time shown when the code was made.
      const deviceExpiresAt = ttl === undefined ? t + DEFAULT_DEVICE_TTL_MS[scope] : ttl === null ? null : t + ttl;
      const requireApproval = options.requireApproval === true;
      const issued = codes.issue({ credential: caller.credential ?? deps.ownerCredential(), scope, deviceExpiresAt, requireApproval });
      const base = (await connectUrls())[0] ?? caller.own ?? '';
      audit('pair.code', { scope, requireApproval, deviceExpiresAt: iso(deviceExpiresAt), by: caller.sub, ingress: caller.ingress });
      return {
        code: issued.code,
        shortCode: formatShortCode(issued.shortCode),
        link: `${base}${UI_PAIR_ROUTE}${issued.code}`,
        expiresAt: new Date(issued.expiresAt).toISOString(),
        scope,
        deviceExpiresAt: iso(deviceExpiresAt),
        requireApproval,
      };
    },

    async exchange(body, caller) {
      assertPairingAvailable();
      const code = body['code'];
      const shortCode = body['shortCode'];
      if ((code === undefined) === (shortCode === undefined) || (code !== undefined && typeof code !== 'string') || (shortCode !== undefined && typeof shortCode !== 'string')) {
        throw new PortholeError('BAD_REQUEST', 'send exactly one of "code" (phc_…) and "shortCode" (XXXXX-XXXXX)');
      }
      // Everything is checked before the code is spent: a malformed request must not burn it.
      const name = checkDeviceName(body['name']);
      const kind = body['kind'] ?? 'sdk';
      if (kind !== 'browser' && kind !== 'sdk') throw new PortholeError('BAD_REQUEST', 'kind: "browser" or "sdk"');
      let publicKey: string | undefined;
      if (body['publicKey'] !== undefined) {
        if (kind !== 'sdk') throw new PortholeError('BAD_REQUEST', 'publicKey is for SDK devices (kind "sdk")');
        publicKey = parseDevicePublicKey(body['publicKey']).spki;
      }
      if (kind === 'browser' && !caller.startSession) throw new PortholeError('BAD_REQUEST', 'a browser pairs over HTTP');
      const r = typeof code === 'string' ? codes.consume(code) : codes.consumeShort(shortCode as string);
      if (r.status === 'unknown') {
        const state = bans.recordFailure(caller.key);
        logger.log('info', 'pairing code refused', { ingress: caller.ingress, banned: state.banned });
        if (state.banned) {
          throw new PortholeError('RATE_LIMITED', 'too many failed attempts; try again later', { retryAfter: state.retryAfterSeconds });
        }
        throw new PortholeError('CODE_INVALID', 'invalid pairing code');
      }
      if (r.status === 'stale') {
        throw new PortholeError('CODE_INVALID', 'this pairing code was already used, has expired, or was burnt by wrong attempts; make a new one');
      }
      const grant = r.grant;
      const t = now();
      const { device, token } = devices.create({
        name,
        kind: kind as DeviceKind,
        scope: grant.scope,
        expiresAt: deviceExpiry(grant, t),
        pending: grant.requireApproval === true,
        withToken: kind === 'sdk',
        publicKey,
        pairedBy: grant.credential,
      });
      const headers: Record<string, string> = {};
      if (kind === 'browser') headers['set-cookie'] = caller.startSession!(`${DEVICE_CREDENTIAL_PREFIX}${device.id}`, grant.scope);
      announce(device, caller.ingress);
      const [urls, p] = await Promise.all([connectUrls(), pins()]);
      const { hasKey: _hasKey, kind: _kind, lastUsedAt: _last, ...shown } = viewDevice(device);
      const answer: Record<string, unknown> = { device: { ...shown, kind: device.kind }, pins: p, connectUrls: urls };
      if (token !== undefined) answer['token'] = token;
      return { body: answer, headers };
    },

    list() {
      const t = now();
      return {
        devices: devices.list().map((d) => {
          const v = viewDevice(d);
          return d.expiresAt !== null && d.expiresAt <= t ? { ...v, status: 'expired' } : v;
        }),
      };
    },

    approve(id, caller) {
      assertAdmin(caller, 'approving a device');
      const before = devices.get(id)?.status;
      const d = devices.approve(id);
      const device = viewDevice(d);
      if (before === 'pending') {
        logger.log('info', 'device approved', { id: d.id });
        audit('device.approved', { id: d.id, name: d.name, by: caller.sub, ingress: caller.ingress });
        deps.publish('devices.changed', { reason: 'approved', device });
      }
      return { device };
    },

    revoke(id, caller) {
      assertAdmin(caller, 'revoking a device');
      // A revocation that could not be saved still takes effect in this process (fail closed:
      // sessions end, connections close), and the caller is told it is not durable yet.
      let d: DeviceRecord;
      let unsaved: Error | undefined;
      try {
        d = devices.revoke(id);
      } catch (err) {
        const r = devices.get(id);
        if (isPortholeError(err) || r?.status !== 'revoked') throw err;
        d = r;
        unsaved = err as Error;
      }
      const credential = `${DEVICE_CREDENTIAL_PREFIX}${d.id}`;
      const self = caller.credential === credential && unsaved === undefined;
      const sessionsEnded = sessions.revokeCredential(credential);
      codes.revokeCredential(credential);
      // The caller revoking its own device gets its answer first (handle() closes the rest after).
      const connectionsClosed = self ? Math.max(0, tracker.count(credential) - 1) : tracker.closeCredential(credential);
      if (unsaved !== undefined) {
        logger.log('error', 'device revoked but not saved', { id: d.id, sessionsEnded, connectionsClosed, error: unsaved.message });
        audit('device.revoked', { id: d.id, name: d.name, by: caller.sub, ingress: caller.ingress, sessionsEnded, connectionsClosed, saved: false });
        deps.publish('devices.changed', { reason: 'revoked', device: viewDevice(d) });
        throw new PortholeError(
          'INTERNAL',
          `device ${d.id} is revoked in the running gateway (${sessionsEnded} session(s) ended, ${connectionsClosed} connection(s) closed), ` +
            `but the revocation was not saved (${unsaved.message}): a restart before the next successful write of devices.json ` +
            'would bring the device back. Fix the file (its directory must be writable) and pair or approve anything to save it, ' +
            'or rotate the token if the device paired with it.',
          { expose: true },
        );
      }
      logger.log('info', 'device revoked', { id: d.id, sessionsEnded, connectionsClosed });
      audit('device.revoked', { id: d.id, name: d.name, by: caller.sub, ingress: caller.ingress, sessionsEnded, connectionsClosed });
      deps.publish('devices.changed', { reason: 'revoked', device: viewDevice(d) });
      return { revoked: true, sessionsEnded, connectionsClosed, self };
    },

    connectUrls,
    pins,

    pairBrowser(grant, userAgent, ingress) {
      const { device } = devices.create({
        name: browserName(userAgent),
        kind: 'browser',
        scope: grant.scope,
        expiresAt: deviceExpiry(grant, now()),
        pending: grant.requireApproval === true,
        withToken: false,
        pairedBy: grant.credential,
      });
      announce(device, ingress);
      return { credential: `${DEVICE_CREDENTIAL_PREFIX}${device.id}`, scope: grant.scope };
    },

    checkCredential: (credential) => devices.checkCredential(credential),
    checkToken: (token) => devices.checkToken(token),

    handle(req, res, path, caller) {
      const method = req.method ?? 'GET';
      // The caller's bad input (INVALID_ARGUMENT: no HTTP status of its own) answers 400 with its message.
      const fail = (err: unknown) => sendError(res, asHttpError(err));
      const run = (fn: () => Promise<void> | void) => {
        Promise.resolve()
          .then(fn)
          .catch((err: unknown) => {
            if (!isPortholeError(err)) logger.log('error', 'pairing API failed', { error: (err as Error)?.message });
            fail(err);
          });
      };
      if (path === PAIR_PATH) {
        if (method !== 'POST') return notAllowed(res, 'POST');
        run(async () => {
          assertAdmin(caller, 'pairing a device');
          const body = await readJsonBody(req);
          sendJson(res, 201, await service.issue(body, caller));
        });
        return true;
      }
      if (path === PAIR_EXCHANGE_PATH) {
        if (method !== 'POST') return notAllowed(res, 'POST');
        run(async () => {
          const r = await service.exchange(await readJsonBody(req), caller);
          sendJson(res, 201, r.body, r.headers);
        });
        return true;
      }
      if (path === CONNECT_URLS_PATH) {
        if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
        run(async () => {
          if (caller.scope === 'none') throw new PortholeError('AUTH_REQUIRED', 'authentication required');
          sendJson(res, 200, { connectUrls: await connectUrls() });
        });
        return true;
      }
      if (path === DEVICES_PATH) {
        if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
        run(() => {
          assertAdmin(caller, 'listing devices');
          sendJson(res, 200, service.list());
        });
        return true;
      }
      const m = /^\/_porthole\/api\/devices\/([^/]{1,64})\/(revoke|approve)$/.exec(path);
      if (m) {
        if (method !== 'POST') return notAllowed(res, 'POST');
        // Device ids are 16 hex digits: an escape that does not decode names no device (and
        // must not throw out of the request handler, which would take the gateway down).
        let id: string;
        try {
          id = decodeURIComponent(m[1]!);
        } catch {
          id = m[1]!;
        }
        run(async () => {
          assertAdmin(caller, m[2] === 'revoke' ? 'revoking a device' : 'approving a device');
          await readJsonBody(req);
          if (m[2] === 'approve') return sendJson(res, 200, service.approve(id, caller));
          const { self, ...answer } = service.revoke(id, caller);
          if (self) res.once('finish', () => tracker.closeCredential(`${DEVICE_CREDENTIAL_PREFIX}${id}`));
          sendJson(res, 200, answer);
        });
        return true;
      }
      if (path.startsWith(`${DEVICES_PATH}/`)) {
        sendError(res, new PortholeError('NOT_FOUND', `no porthole endpoint ${path}`));
        return true;
      }
      return false;
    },
  };
  return service;
}
