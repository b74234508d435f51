// The desk's tunnel client: dials the relay (outbound only, TLS 1.3), proves its identity
// and the registration secret, then carries visitor streams. connectLoop owns back-off
// and cancellation; connectOnce is one attempt (chisel/frp's split).
import { EventEmitter } from 'node:events';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { subdomainSyntaxProblem } from '../relay/names.js';
import type { Duplex } from 'node:stream';
import { PortholeError, type ErrorCode } from '../errors.js';
import { type Logger, debugLogger } from '../log.js';
import {
  EXPORTER_LABEL,
  EXPORTER_LENGTH,
  encodeMessage,
  PROTOCOL_VERSION,
  readMessage,
  secretProof,
  signTranscript,
  transcript,
  TUNNEL_ALPN,
  type HandshakeMessage,
} from '../protocol/handshake.js';
import { createMuxSession, type MuxSession } from '../protocol/mux/index.js';
import { backoffDelay, backoffSettings, delayUnlessWoken } from '../util/backoff.js';
import { parseHostPort } from '../util/host-port.js';
import type { DeskIdentity } from './identity.js';

export interface VisitorMeta {
  v: number;
  /** The visitor's address as the relay saw it. */
  remote: string;
  remotePort?: number;
  /** true: the stream carries the visitor's TLS (passthrough); the desk terminates it. */
  tls: boolean;
}

export interface TunnelClientOptions {
  /** "host:port" of the relay. */
  relay: string;
  /** Address to dial instead of resolving the relay's host (split DNS, tests); SNI stays the host. */
  connectAddress?: string;
  subdomain?: string;
  /** Extra CA (PEM) for private relays and tests. */
  ca?: string;
  identity: DeskIdentity;
  /** The registration secret; a function is asked at every attempt (the operator may set a new one). */
  secret: string | (() => string);
  /** A visitor stream arrived. */
  onStream(stream: Duplex, meta: VisitorMeta): void;
  /** Back-off: first delay, cap, and how long a link must stay up to reset it. */
  backoff?: { baseMs?: number; maxMs?: number; stableMs?: number };
  pingIntervalMs?: number;
  deadAfterMs?: number;
  /** Time for TLS + registration. Default 15 s. */
  connectTimeoutMs?: number;
  logger?: Logger;
}

export type TunnelState =
  | { state: 'stopped' }
  | { state: 'connecting'; attempt: number; lastError?: { code: string; message: string } }
  | { state: 'online'; name: string; url: string; since: number; mode: 'passthrough' | 'terminate' }
  /** `retryAt`: when the next attempt starts (ms since the epoch); `retryInMs` counts down to it. */
  | { state: 'waiting'; retryInMs: number; retryAt: number; attempt: number; lastError: { code: string; message: string } };

export interface TunnelClient extends EventEmitter {
  start(): void;
  /** Ends the link and any attempt in flight (its socket and timer too); nothing registers after. */
  stop(): Promise<void>;
  status(): TunnelState;
  /** Cuts a back-off short (a new secret was set): the next attempt starts now. */
  retryNow(): void;
}

/** The longest a relay's retryAfter may hold the desk back (15 min, the longest ban it could mean). */
const MAX_RETRY_AFTER_S = 900;

/** Errors after which retrying cannot help until something changes (config, secret, name). */
const PERMANENT = new Set(['REGISTRATION_DENIED', 'SUBDOMAIN_TAKEN', 'SUBDOMAIN_HELD', 'SUBDOMAIN_INVALID']);

interface Link {
  socket: TLSSocket;
  session: MuxSession;
  name: string;
  url: string;
  mode: 'passthrough' | 'terminate';
}

/** A relay's error code as the desk records it: the relay is not trusted to send a short, clean one. */
function relayCode(code: unknown): string {
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'TUNNEL_PROTOCOL_ERROR';
}

/**
 * One attempt: TLS, challenge, register, registered → a live multiplexed link. `signal`
 * aborts it at any point (its socket destroyed, its timer cleared): a stopped tunnel must not
 * finish registering afterwards.
 */
export function connectOnce(o: TunnelClientOptions, kind: 'register' | 'release' = 'register', signal?: AbortSignal): Promise<Link | { released: string | null }> {
  const { host, port } = parseHostPort(o.relay, 'relay address');
  const relayName = host.toLowerCase();
  if (signal?.aborted) return Promise.reject(new PortholeError('TUNNEL_CLOSED', 'the tunnel was stopped'));
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: o.connectAddress ?? host,
      port,
      servername: relayName,
      ALPNProtocols: [TUNNEL_ALPN],
      minVersion: 'TLSv1.3',
      ...(o.ca ? { ca: o.ca } : {}),
    });
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let challenged = false;
    const fail = (code: ErrorCode | string, message: string, retryAfter?: number) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new PortholeError((code as ErrorCode) ?? 'TUNNEL_PROTOCOL_ERROR', message, retryAfter === undefined ? {} : { retryAfter }));
    };
    const onAbort = () => fail('TUNNEL_CLOSED', 'the tunnel was stopped');
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => fail('TUNNEL_PROTOCOL_ERROR', 'relay did not complete the handshake in time'), o.connectTimeoutMs ?? 15_000);
    const onError = (err: NodeJS.ErrnoException) =>
      fail('TUNNEL_UNREACHABLE', `cannot reach the relay at ${o.relay}: ${err.code ?? err.message}`);
    const onClose = () => fail('TUNNEL_UNREACHABLE', 'the relay closed the connection during the handshake');
    // Only our own listeners are removed later: TLSSocket keeps internal ones on 'close'.
    const detach = () => {
      socket.off('error', onError);
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    socket.once('close', onClose);
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const r = readMessage(buf);
        if (r.status === 'incomplete') return;
        if (r.status === 'invalid') return fail('TUNNEL_PROTOCOL_ERROR', r.reason);
        buf = r.rest;
        let more: boolean;
        try {
          more = handle(r.message);
        } catch (err) {
          // A bug here must cost this connection attempt, never the gateway.
          return fail('TUNNEL_PROTOCOL_ERROR', `handshake failed: ${(err as Error).message}`);
        }
        if (!more) return;
      }
    };
    const handle = (m: HandshakeMessage): boolean => {
      if (m.type === 'challenge' && !challenged) {
        challenged = true;
        if (m.version !== PROTOCOL_VERSION || m.relay.toLowerCase() !== relayName) {
          fail('TUNNEL_PROTOCOL_ERROR', `unexpected relay ${m.relay} or version ${m.version}`);
          return false;
        }
        const exporter = socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0));
        const sub = kind === 'register' ? (o.subdomain ?? null) : null;
        const t = transcript(relayName, sub, m.nonce, exporter);
        socket.write(
          encodeMessage({
            type: kind,
            version: PROTOCOL_VERSION,
            publicKey: o.identity.publicKey,
            subdomain: sub,
            signature: signTranscript(o.identity.privateKeyPem, t),
            secretProof: secretProof(typeof o.secret === 'function' ? o.secret() : o.secret, t),
          }),
        );
        return true;
      }
      if (m.type === 'error') {
        // A relay's "come back later" (RATE_LIMITED) is honoured, within reason: it is not trusted.
        const after = typeof m.retryAfter === 'number' && m.retryAfter > 0 ? Math.min(m.retryAfter, MAX_RETRY_AFTER_S) : undefined;
        fail(relayCode(m.code), `relay refused: ${String(m.message).slice(0, 200)}`, after);
        return false;
      }
      if (m.type === 'released' && kind === 'release') {
        clearTimeout(timer);
        detach();
        socket.destroy();
        resolve({ released: m.name });
        return false;
      }
      if (m.type === 'registered' && kind === 'register') {
        // The URL's name joins the gateway's Host allowlist: only <name>.<relay> over https.
        const urlProblem = registeredUrlProblem(m, relayName);
        if (urlProblem !== undefined) {
          fail('TUNNEL_PROTOCOL_ERROR', `the relay registered an unexpected URL: ${urlProblem}`);
          return false;
        }
        clearTimeout(timer);
        socket.off('data', onData);
        detach();
        socket.pause();
        if (buf.length) socket.unshift(buf);
        const session = createMuxSession(socket, {
          isOpener: false,
          pingIntervalMs: o.pingIntervalMs,
          deadAfterMs: o.deadAfterMs,
        });
        socket.resume();
        resolve({ socket, session, name: m.name, url: m.url, mode: m.mode === 'terminate' ? 'terminate' : 'passthrough' });
        return false;
      }
      fail('TUNNEL_PROTOCOL_ERROR', `unexpected ${m.type} message`);
      return false;
    };
    socket.on('data', onData);
  });
}

/** The reconnecting client: forever, with capped exponential back-off and full jitter. */
export function createTunnelClient(o: TunnelClientOptions): TunnelClient {
  const logger = o.logger ?? debugLogger;
  const backoff = backoffSettings(o.backoff);
  const { stableMs } = backoff;
  const emitter = new EventEmitter() as TunnelClient;
  let state: TunnelState = { state: 'stopped' };
  /** The current run: aborted by stop(), which ends its loop, its attempt and its link. */
  let run: AbortController | undefined;
  let link: Link | undefined;
  let attempt = 0;

  /** A listener's failure (a full disk under the audit log) must not end the loop, or the gateway. */
  const tell = (event: string, value: unknown): void => {
    try {
      emitter.emit(event, value);
    } catch (err) {
      logger.log('error', 'tunnel event listener failed', { event, error: (err as Error).message });
    }
  };
  const set = (s: TunnelState) => {
    state = s;
    tell('state', s);
  };

  async function connectLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      attempt++;
      set({ state: 'connecting', attempt, ...(state.state === 'waiting' ? { lastError: state.lastError } : {}) });
      let error: { code: string; message: string };
      let notBefore = 0;
      try {
        const l = (await connectOnce(o, 'register', signal)) as Link;
        if (signal.aborted) {
          l.session.close();
          return;
        }
        link = l;
        const since = Date.now();
        l.session.on('stream', (stream: Duplex, meta: Buffer) => {
          const parsed = parseVisitorMeta(meta);
          if (parsed === undefined) {
            logger.log('warn', 'tunnel stream refused: malformed visitor metadata from the relay');
            stream.destroy();
            return;
          }
          try {
            o.onStream(stream, parsed);
          } catch (err) {
            // One visitor's stream, never the gateway.
            logger.log('error', 'tunnel stream failed', { error: (err as Error).message });
            stream.destroy();
          }
        });
        const closed = new Promise<{ code: string; message: string }>((resolve) => l.session.once('close', resolve));
        set({ state: 'online', name: l.name, url: l.url, since, mode: l.mode });
        const reason = await closed;
        link = undefined;
        if (signal.aborted) return;
        if (Date.now() - since >= stableMs) attempt = 0; // a stable link resets the back-off
        error = { code: reason?.code ?? 'CLOSED', message: reason?.message ?? 'link closed' };
        logger.log('warn', 'tunnel offline', { code: error.code });
        tell('offline', error);
      } catch (err) {
        if (signal.aborted) return;
        const e = err as PortholeError;
        error = { code: e.code ?? 'TUNNEL_UNREACHABLE', message: e.message };
        notBefore = (e.retryAfter ?? 0) * 1000;
        logger.log('warn', 'tunnel connect failed', { code: error.code });
        tell('failed', error);
      }
      if (signal.aborted) return;
      // Full jitter; permanent refusals wait at least half the cap — retrying sooner cannot help.
      const wait = Math.max(backoffDelay(attempt, backoff, PERMANENT.has(error.code)), notBefore);
      set({ state: 'waiting', retryInMs: wait, retryAt: Date.now() + wait, attempt, lastError: error });
      await delayUnlessWoken(emitter, wait);
    }
  }

  return Object.assign(emitter, {
    start() {
      if (run !== undefined) return;
      const current = new AbortController();
      run = current;
      attempt = 0;
      connectLoop(current.signal).catch((err: Error) => {
        logger.log('error', 'tunnel client failed', { error: err.message });
      });
    },
    async stop() {
      run?.abort();
      run = undefined;
      emitter.emit('wake');
      link?.session.close();
      link = undefined;
      set({ state: 'stopped' });
    },
    status: (): TunnelState =>
      state.state === 'waiting' ? { ...state, retryInMs: Math.max(0, state.retryAt - Date.now()) } : state,
    retryNow() {
      if (state.state === 'waiting') emitter.emit('wake');
    },
  });
}

/** A relay's OPEN metadata, checked field by field (the relay is not trusted); undefined when malformed. */
export function parseVisitorMeta(meta: Buffer): VisitorMeta | undefined {
  let v: unknown;
  try {
    v = JSON.parse(meta.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as Record<string, unknown>;
  if (typeof m['remote'] !== 'string' || m['remote'].length > 100 || typeof m['tls'] !== 'boolean') return undefined;
  const port = m['remotePort'];
  if (port !== undefined && !(Number.isInteger(port) && (port as number) >= 0 && (port as number) <= 65535)) return undefined;
  return { v: typeof m['v'] === 'number' ? m['v'] : 1, remote: m['remote'], ...(port !== undefined ? { remotePort: port as number } : {}), tls: m['tls'] };
}

/** Why a `registered` URL is not https://<name>.<relay>[:port]/, or undefined when it is. */
export function registeredUrlProblem(m: { name: string; url: string }, relayName: string): string | undefined {
  let url: URL;
  try {
    url = new URL(m.url);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:') return 'not https';
  if (subdomainSyntaxProblem(m.name) !== undefined) return 'not a subdomain name';
  if (url.hostname !== `${m.name}.${relayName.toLowerCase()}`) return `${url.hostname} is not ${m.name}.${relayName}`;
  if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return 'more than an origin';
  return undefined;
}
