// `porthole relay`: one TLS port for desks and visitors. The first flight of every
// connection is read (SNI, ALPN) before deciding: the relay's own name with porthole's
// ALPN is a desk; `<sub>.<domain>` is a visitor for that desk, whose bytes go to the desk
// untouched (passthrough: the desk terminates TLS; the relay sees ciphertext only).
import { X509Certificate } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { EventEmitter } from 'node:events';
import { PortholeError } from '../errors.js';
import { type Logger, debugLogger } from '../log.js';
import { createClientHelloReader, TLS_ALERT, tlsAlert } from '../protocol/client-hello.js';
import { encodeMessage, TUNNEL_ALPN } from '../protocol/handshake.js';
import { createMuxSession, type MuxSession } from '../protocol/mux/index.js';
import { createBanTable } from '../auth/rate-limit.js';
import { clientKey, isLoopbackAddress, normalizeAddress } from '../auth/ip.js';
import { relayHandshake } from './desk-handshake.js';
import { forwardBatched } from './forward.js';
import { matchDomain } from './names.js';
import { startHttpListener } from './http-listener.js';
import { createChallengeResponder } from '../acme/challenges.js';
import type { AcmeChallengeStore } from '../acme/client.js';
import { openRegistry, type Registry } from './registry.js';
import { refuse } from './refuse.js';

export interface RelayLimits {
  /** Time a new connection has to send its ClientHello (slowloris). Default 10 s. */
  clientHelloTimeoutMs?: number;
  /** Largest ClientHello buffered. Default 16 KiB + 5. */
  maxClientHelloBytes?: number;
  /** Time a desk has for its registration message after TLS. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * Concurrent visitors per desk; more are refused. A visitor counts until its connection
   * closes — also while the relay still holds an answer the desk has finished. Default 512.
   */
  maxStreamsPerDesk?: number;
  /**
   * Concurrent visitors per desk from one source (an IPv4 address, an IPv6 /64), so one
   * source cannot take all of a desk's streams. Default 256, half a desk: one client opening a
   * couple of hundred connections at once still fits.
   */
  maxStreamsPerAddress?: number;
  /** Desks online at once. Default 1000. */
  maxDesks?: number;
  /** Registration attempts per source address per minute. Default 10. */
  registrationsPerMinute?: number;
  /** A visitor connection with no bytes either way for this long is closed. Default 10 min. */
  visitorIdleMs?: number;
  /** Mux liveness: ping interval and dead-link timeout. Defaults 5 s / 10 s. */
  pingIntervalMs?: number;
  deadAfterMs?: number;
}

export interface RelayOptions {
  /** Tunnel domain: desks get `<name>.<domain>`; the apex is the relay's own name. */
  domain: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * passthrough (default): visitors' TLS goes to the desk untouched. terminate: the relay
   * holds a wildcard certificate, terminates visitors' TLS and can read their traffic.
   */
  mode?: 'passthrough' | 'terminate';
  /**
   * Certificate for the relay's own name (the apex); in terminate mode it must also cover
   * `*.<domain>`. PEM. Passthrough only: may be left out and installed later with
   * setCertificate (ACME); until then desks' handshakes are refused.
   */
  certPem?: string;
  keyPem?: string;
  /** Registration secret. Required unless the relay listens on loopback and is not --production. */
  registrationSecret: string | undefined;
  /** Refuse the dev default secret everywhere. */
  production?: boolean;
  /** Registry directory. */
  storeDir: string;
  /** Port visitors use, for the URLs given to desks (default: the listening port). */
  publicPort?: number;
  /** Optional plain-HTTP listener: redirects to https, forwards ACME HTTP-01 paths to desks. */
  http?: { host: string; port: number };
  limits?: RelayLimits;
  logger?: Logger;
}

export interface DeskInfo {
  name: string;
  since: number;
  streams: number;
  remote: string;
}

export interface Relay extends EventEmitter {
  readonly port: number;
  /** Port of the plain-HTTP listener, if any. */
  readonly httpPort: number | undefined;
  readonly host: string;
  desks(): DeskInfo[];
  /** Serves the relay's own name with this certificate from the next handshake on. */
  setCertificate(cert: { certPem: string; keyPem: string }): void;
  /** HTTP-01 key authorizations for the relay's own name, answered on the plain-HTTP listener. */
  readonly challenges: AcmeChallengeStore;
  close(): Promise<void>;
}

const DEFAULTS = {
  clientHelloTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  maxStreamsPerDesk: 512,
  maxStreamsPerAddress: 256,
  maxDesks: 1000,
  registrationsPerMinute: 10,
  visitorIdleMs: 600_000,
  pingIntervalMs: 5_000,
  deadAfterMs: 10_000,
};

interface LiveDesk {
  name: string;
  /** The desk's key (registry): a key serves one name at a time. */
  publicKey: string;
  session: MuxSession;
  since: number;
  remote: string;
  /** Visitor connections open now, in all and per source key (clientKey). */
  visitors: number;
  bySource: Map<string, number>;
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { DEV_REGISTRATION_SECRET } = await import('../protocol/handshake.js');
  const limits = { ...DEFAULTS, ...options.limits };
  const logger = options.logger ?? debugLogger;
  const domain = options.domain.toLowerCase().replace(/\.$/, '');
  const loopback = isLoopbackAddress(options.host) || options.host === 'localhost';
  const secret = options.registrationSecret;
  if (secret === undefined && !loopback) {
    throw new PortholeError(
      'REGISTRATION_DENIED',
      `a relay listening on ${options.host} needs a registration secret: set PORTHOLE_RELAY_REGISTRATION_SECRET (or --secret-file); the dev default works only on loopback`,
    );
  }
  if (secret === undefined && options.production) {
    throw new PortholeError('REGISTRATION_DENIED', '--production refuses the dev default secret: set PORTHOLE_RELAY_REGISTRATION_SECRET');
  }
  if (secret !== undefined && secret === DEV_REGISTRATION_SECRET && (options.production || !loopback)) {
    throw new PortholeError('REGISTRATION_DENIED', 'the dev default registration secret is accepted only on a loopback, non-production relay');
  }
  if (secret !== undefined && secret.length < 16) {
    throw new PortholeError('REGISTRATION_DENIED', 'the registration secret must have at least 16 characters');
  }
  const secrets = secret === undefined ? [DEV_REGISTRATION_SECRET] : [secret];
  const mode = options.mode ?? 'passthrough';
  if ((options.certPem === undefined) !== (options.keyPem === undefined)) {
    throw new PortholeError('INVALID_ARGUMENT', 'the relay certificate and its key go together');
  }
  if (mode === 'terminate' && options.certPem === undefined) {
    throw new PortholeError('INVALID_ARGUMENT', `terminate mode needs a certificate that also covers *.${domain} (ACME HTTP-01 cannot issue wildcards)`);
  }
  if (mode === 'terminate' && new X509Certificate(options.certPem!).checkHost(`desk.${domain}`) === undefined) {
    throw new PortholeError('INVALID_ARGUMENT', `terminate mode needs a certificate that also covers *.${domain}`);
  }
  const registry: Registry = openRegistry({ dir: options.storeDir });
  const contextFor = (cert: { certPem: string; keyPem: string }): SecureContext =>
    createSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.3' });
  // Terminate mode always has one (checked above); passthrough may wait for ACME.
  let context: SecureContext | undefined =
    options.certPem !== undefined && options.keyPem !== undefined ? contextFor({ certPem: options.certPem, keyPem: options.keyPem }) : undefined;
  const ownChallenges = createChallengeResponder();
  // The ban table bans on the Nth recorded attempt; N allowed a minute means banning on N+1.
  const registrations = createBanTable({ maxFailures: limits.registrationsPerMinute + 1, windowMs: 60_000, banMs: 60_000 });
  const live = new Map<string, LiveDesk>();
  const emitter = new EventEmitter();
  const sockets = new Set<Socket>();
  let publicPort = options.publicPort ?? 0;

  const server: Server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    route(socket);
  });

  /**
   * The TLS handshakes the relay terminates itself (desks; visitors in terminate mode) get the
   * ClientHello's deadline again: a peer that stops mid-handshake is closed, not held forever.
   */
  function handshakeDeadline(tls: TLSSocket): void {
    const timer = setTimeout(() => tls.destroy(), limits.clientHelloTimeoutMs);
    tls.once('secure', () => clearTimeout(timer));
    tls.once('close', () => clearTimeout(timer));
  }

  function route(socket: Socket): void {
    const reader = createClientHelloReader(limits.maxClientHelloBytes);
    const timer = setTimeout(() => socket.destroy(), limits.clientHelloTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
    const onData = (chunk: Buffer) => {
      const r = reader.push(chunk);
      if (r.status === 'incomplete') return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (r.status === 'invalid') {
        socket.destroy();
        return;
      }
      const first = Buffer.from(reader.buffered);
      const m = r.hello.serverName ? matchDomain(r.hello.serverName, domain) : undefined;
      if (m?.kind === 'apex' && r.hello.alpn.includes(TUNNEL_ALPN)) {
        socket.unshift(first);
        acceptDesk(socket);
      } else if (m?.kind === 'sub' && mode === 'terminate') {
        socket.unshift(first);
        terminateVisitor(socket, m.name);
      } else if (m?.kind === 'sub') {
        forwardVisitor(socket, m.name, first);
      } else {
        refuse(socket, tlsAlert(TLS_ALERT.unrecognizedName));
      }
    };
    socket.on('data', onData);
  }

  /** Opens a stream to the desk and splices `visitor` onto it; false when the desk cannot take it. */
  function splice(desk: LiveDesk, visitor: Duplex, remote: Socket, tls: boolean, first?: Buffer): boolean {
    // Counted by open visitor connections, not by mux streams: a stream the desk has finished
    // and reset leaves the session while the relay may still hold its answer for a visitor
    // that does not read (up to the visitor idle timeout).
    if (desk.visitors >= limits.maxStreamsPerDesk || desk.session.streamCount >= limits.maxStreamsPerDesk) return false;
    const address = normalizeAddress(remote.remoteAddress) ?? 'unknown';
    const source = clientKey(address);
    const fromSource = desk.bySource.get(source) ?? 0;
    if (fromSource >= limits.maxStreamsPerAddress) return false;
    const meta = Buffer.from(JSON.stringify({ v: 1, remote: address, remotePort: remote.remotePort, tls }));
    let stream: ReturnType<MuxSession['openStream']>;
    try {
      stream = desk.session.openStream(meta);
    } catch {
      return false;
    }
    desk.visitors++;
    desk.bySource.set(source, fromSource + 1);
    visitor.once('close', () => {
      desk.visitors--;
      const n = (desk.bySource.get(source) ?? 1) - 1;
      if (n === 0) desk.bySource.delete(source);
      else desk.bySource.set(source, n);
    });
    if (first) stream.write(first);
    // Idle in both directions: the raw socket sees every byte either way, TLS or not.
    remote.setTimeout(limits.visitorIdleMs, () => {
      visitor.destroy();
      stream.destroy();
    });
    visitor.pipe(stream);
    forwardBatched(stream, visitor);
    visitor.resume();
    const kill = () => {
      visitor.destroy();
      stream.destroy();
    };
    stream.on('error', kill);
    visitor.on('error', kill);
    visitor.once('close', () => stream.destroy());
    // The stream is done both ways; let the visitor's socket flush what the desk sent
    // (forwardBatched has ended it) before closing — destroying now could truncate the response.
    stream.once('close', () => {
      if (visitor.writableFinished || visitor.destroyed) visitor.destroy();
      else {
        visitor.once('finish', () => visitor.destroy());
        setTimeout(() => visitor.destroy(), 30_000).unref();
      }
    });
    return true;
  }

  function forwardVisitor(socket: Socket, name: string, first: Buffer): void {
    const desk = live.get(name);
    if (!desk) {
      refuse(socket, tlsAlert(TLS_ALERT.unrecognizedName));
      return;
    }
    if (!splice(desk, socket, socket, true, first)) refuse(socket, tlsAlert(TLS_ALERT.internalError));
  }

  /** Terminate mode: TLS ends here (the relay can read the traffic); plaintext goes to the desk. */
  function terminateVisitor(socket: Socket, name: string): void {
    const tls = new TLSSocket(socket, { isServer: true, secureContext: context!, ALPNProtocols: ['http/1.1'] });
    tls.on('error', () => tls.destroy());
    handshakeDeadline(tls);
    tls.once('secure', () => {
      const desk = live.get(name);
      if (!desk || !splice(desk, tls, socket, false)) {
        const body = desk ? 'This desk is busy; try again.\n' : `No desk is online at ${name}.${domain}.\n`;
        refuse(
          tls,
          `HTTP/1.1 ${desk ? 503 : 404} ${desk ? 'Service Unavailable' : 'Not Found'}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
    });
  }

  function acceptDesk(raw: Socket): void {
    const remote = normalizeAddress(raw.remoteAddress) ?? 'unknown';
    const key = clientKey(remote);
    if (context === undefined) {
      // No certificate yet (ACME still working): the desk's client retries with back-off.
      refuse(raw, tlsAlert(TLS_ALERT.internalError));
      return;
    }
    const rate = registrations.recordFailure(key);
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context, ALPNProtocols: [TUNNEL_ALPN] });
    tls.on('error', () => tls.destroy());
    handshakeDeadline(tls);
    tls.once('secure', async () => {
      if (rate.banned) {
        refuse(tls, encodeMessage({ type: 'error', code: 'RATE_LIMITED', message: 'too many registrations', retryAfter: rate.retryAfterSeconds }));
        audit('registration refused', { remote, code: 'RATE_LIMITED' });
        return;
      }
      if (tls.alpnProtocol !== TUNNEL_ALPN) {
        tls.destroy();
        return;
      }
      // Full: refused before the handshake, so a refused desk claims no name (a desk whose old
      // link is not yet known dead retries once it is: its back-off outlasts the dead-link timeout).
      if (live.size >= limits.maxDesks) {
        refuse(tls, encodeMessage({ type: 'error', code: 'RATE_LIMITED', message: 'this relay is full', retryAfter: 30 }));
        audit('registration refused', { remote, code: 'RATE_LIMITED', reason: 'relay full' });
        return;
      }
      let outcome: Awaited<ReturnType<typeof relayHandshake>>;
      try {
        outcome = await relayHandshake(tls, { relayName: domain, secrets, registry, timeoutMs: limits.handshakeTimeoutMs });
      } catch (err) {
        // A bug costs this desk's attempt, never the relay (an async listener's throw would end it).
        logger.log('error', 'desk handshake failed', { remote, error: (err as Error).message });
        tls.destroy();
        return;
      }
      if (outcome.ok === false) {
        audit('registration refused', { remote, code: outcome.refused.code, reason: outcome.audit });
        refuse(tls, encodeMessage(outcome.refused));
        return;
      }
      if (outcome.ok === 'released') {
        // Every link of the key, whatever name it was on: a released key serves no name.
        closeLinksOf(outcome.publicKey, undefined);
        audit('released', { remote, name: outcome.name ?? null });
        refuse(tls, encodeMessage({ type: 'released', name: outcome.name ?? null }));
        return;
      }
      const name = outcome.name;
      const url = `https://${name}.${domain}${publicPort === 443 ? '' : `:${publicPort}`}`;
      tls.write(encodeMessage({ type: 'registered', name, url, mode }));
      if (outcome.rest.length) tls.unshift(outcome.rest);
      const session = createMuxSession(tls, {
        isOpener: true,
        pingIntervalMs: limits.pingIntervalMs,
        deadAfterMs: limits.deadAfterMs,
        maxStreams: 0,
      });
      // The same desk reconnecting (its old link may be dead but not yet noticed) replaces it.
      const previous = live.get(name);
      const desk: LiveDesk = { name, publicKey: outcome.publicKey, session, since: Date.now(), remote, visitors: 0, bySource: new Map() };
      live.set(name, desk);
      previous?.session.close();
      // The key moved to this name: its links on other names (held back now) serve no more.
      closeLinksOf(outcome.publicKey, name);
      touchName(name);
      audit('online', { remote, name });
      emitter.emit('desk', { name, url });
      const touch = setInterval(() => touchName(name), 60_000);
      touch.unref();
      session.on('stream', (s) => s.destroy()); // desks never open streams toward the relay
      session.once('close', (reason: { code: string; message: string }) => {
        clearInterval(touch);
        if (live.get(name) === desk) live.delete(name);
        audit('offline', { remote, name, code: reason?.code ?? 'closed' });
        emitter.emit('desk-offline', { name });
      });
      tls.resume();
    });
  }

  /** Closes the live links of `publicKey` on every name but `keep`. */
  function closeLinksOf(publicKey: string, keep: string | undefined): void {
    for (const d of [...live.values()]) if (d.publicKey === publicKey && d.name !== keep) d.session.close();
  }

  /**
   * The registry's bookkeeping (lease touches, the sweep, the flush at close) from timers and
   * handshakes: a store that cannot be written (full disk, a file replaced behind the relay's
   * back) is logged, never the relay's end.
   */
  function quietly(what: string, write: () => void): void {
    try {
      write();
    } catch (err) {
      logger.log('error', `${what} failed`, { error: (err as Error).message });
    }
  }
  const touchName = (name: string): void => quietly(`registry write (${name})`, () => registry.touch(name));

  function audit(event: string, fields: Record<string, string | number | null>): void {
    logger.log('info', `relay ${event}`, fields);
    emitter.emit('audit', { event, ...fields });
  }

  const sweep = setInterval(() => quietly('registry sweep', () => registry.sweep()), 3600_000);
  sweep.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new PortholeError(err.code === 'EADDRINUSE' ? 'ADDRESS_IN_USE' : 'LISTEN_FAILED', `relay cannot listen on ${options.host}:${options.port}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as { port: number; address: string };
  if (!publicPort) publicPort = address.port;
  const httpServer = options.http
    ? await startHttpListener({
        ...options.http,
        domain,
        httpsPort: () => publicPort,
        ownChallenge: (target) => ownChallenges.answer(target),
        toDesk(name, socket, first) {
          const desk = live.get(name);
          return desk !== undefined && splice(desk, socket, socket, false, first);
        },
      })
    : undefined;

  return Object.assign(emitter, {
    port: address.port,
    httpPort: httpServer ? (httpServer.address() as { port: number }).port : undefined,
    host: address.address,
    desks: () =>
      [...live.values()].map((d) => ({ name: d.name, since: d.since, streams: d.session.streamCount, remote: d.remote })),
    setCertificate(cert: { certPem: string; keyPem: string }) {
      context = contextFor(cert);
    },
    challenges: ownChallenges,
    async close() {
      clearInterval(sweep);
      for (const d of live.values()) d.session.close();
      httpServer?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      // Lease times not written are a day's precision lost, not a reason to fail the shutdown.
      quietly('registry flush', () => registry.flush());
    },
  }) as Relay;
}
