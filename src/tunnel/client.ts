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
  secret: string;
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
  | { state: 'waiting'; retryInMs: number; attempt: number; lastError: { code: string; message: string } };

export interface TunnelClient extends EventEmitter {
  start(): void;
  stop(): Promise<void>;
  status(): TunnelState;
}

/** Errors after which retrying cannot help until something changes (config, secret, name). */
const PERMANENT = new Set(['REGISTRATION_DENIED', 'SUBDOMAIN_TAKEN', 'SUBDOMAIN_HELD', 'SUBDOMAIN_INVALID']);

interface Link {
  socket: TLSSocket;
  session: MuxSession;
  name: string;
  url: string;
  mode: 'passthrough' | 'terminate';
}

/** One attempt: TLS, challenge, register, registered → a live multiplexed link. */
export function connectOnce(o: TunnelClientOptions, kind: 'register' | 'release' = 'register'): Promise<Link | { released: string | null }> {
  const { host, port } = parseHostPort(o.relay, 'relay address');
  const relayName = host.toLowerCase();
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
    const fail = (code: ErrorCode | string, message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new PortholeError((code as ErrorCode) ?? 'TUNNEL_PROTOCOL_ERROR', message));
    };
    const timer = setTimeout(() => fail('TUNNEL_PROTOCOL_ERROR', 'relay did not complete the handshake in time'), o.connectTimeoutMs ?? 15_000);
    const onError = (err: NodeJS.ErrnoException) =>
      fail('TUNNEL_UNREACHABLE', `cannot reach the relay at ${o.relay}: ${err.code ?? err.message}`);
    const onClose = () => fail('TUNNEL_UNREACHABLE', 'the relay closed the connection during the handshake');
    // Only our own listeners are removed later: TLSSocket keeps internal ones on 'close'.
    const detach = () => {
      socket.off('error', onError);
      socket.off('close', onClose);
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
            secretProof: secretProof(o.secret, t),
          }),
        );
        return true;
      }
      if (m.type === 'error') {
        fail(m.code, `relay refused: ${m.message}`);
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
  let running = false;
  let link: Link | undefined;
  let attempt = 0;

  const set = (s: TunnelState) => {
    state = s;
    emitter.emit('state', s);
  };

  async function connectLoop(): Promise<void> {
    while (running) {
      attempt++;
      set({ state: 'connecting', attempt, ...(state.state === 'waiting' ? { lastError: state.lastError } : {}) });
      let error: { code: string; message: string };
      try {
        const l = (await connectOnce(o)) as Link;
        if (!running) {
          l.session.close();
          return;
        }
        link = l;
        const since = Date.now();
        set({ state: 'online', name: l.name, url: l.url, since, mode: l.mode });
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
        const reason = await new Promise<{ code: string; message: string }>((resolve) => l.session.once('close', resolve));
        link = undefined;
        if (Date.now() - since >= stableMs) attempt = 0; // a stable link resets the back-off
        error = { code: reason?.code ?? 'CLOSED', message: reason?.message ?? 'link closed' };
        logger.log('warn', 'tunnel offline', { code: error.code });
        emitter.emit('offline', error);
      } catch (err) {
        const e = err as PortholeError;
        error = { code: e.code ?? 'TUNNEL_UNREACHABLE', message: e.message };
        logger.log('warn', 'tunnel connect failed', { code: error.code });
        emitter.emit('failed', error);
      }
      if (!running) return;
      // Full jitter; permanent refusals wait up to the cap — retrying sooner cannot help.
      const wait = backoffDelay(attempt, backoff, PERMANENT.has(error.code));
      set({ state: 'waiting', retryInMs: wait, attempt, lastError: error });
      await delayUnlessWoken(emitter, wait);
    }
  }

  return Object.assign(emitter, {
    start() {
      if (running) return;
      running = true;
      attempt = 0;
      void connectLoop();
    },
    async stop() {
      running = false;
      emitter.emit('wake');
      link?.session.close();
      link = undefined;
      set({ state: 'stopped' });
    },
    status: () => state,
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
