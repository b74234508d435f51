// Visitor streams from the tunnel enter the gateway in-process (never through a loopback
// TCP hop, so they can never look local): TLS is terminated here with the desk's own
// certificate (passthrough), the socket is marked as ingress class `tunnel` with the
// visitor's address, and handed to the gateway's HTTP server.
//
// Plaintext streams (`tls: false`) are either a terminate-mode relay's visitors or ACME
// HTTP-01 validations the relay's plain-HTTP listener carried here (docs/relay-protocol.md
// §7). Those go through a server whose handler answers
// `GET /.well-known/acme-challenge/<token>` for a token the desk is being validated for
// (key authorizations are public by design, RFC 8555 §8.3) and hands everything else to the
// gateway unchanged.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { createChallengeResponder } from '../acme/challenges.js';
import type { AcmeChallengeStore } from '../acme/client.js';
import type { Gateway } from '../gateway/gateway.js';
import { attachFront } from '../gateway/front.js';
import { createGatewayServer } from '../gateway/listen.js';
import type { VisitorMeta } from './client.js';

export interface TunnelCertificate {
  certPem: string;
  keyPem: string;
}

export interface TunnelIngress {
  onStream(stream: Duplex, meta: VisitorMeta): void;
  /**
   * Serves visitors with this certificate from their next handshake on (ACME issuance and
   * renewal swap it while connections stay up). Throws if the pair is unusable.
   */
  setCertificate(cert: TunnelCertificate): void;
  /** Whether a certificate is loaded: until then passthrough visitors get a TLS alert. */
  readonly hasCertificate: boolean;
  /** Key authorizations to answer on `/.well-known/acme-challenge/<token>` (plaintext streams only). */
  readonly challenges: AcmeChallengeStore;
  close(): void;
}


export function createTunnelIngress(gateway: Gateway, cert?: TunnelCertificate, options: { front?: boolean } = {}): TunnelIngress {
  const tlsServer = createGatewayServer(gateway);
  // Passthrough visitors' decrypted connections are read by the front first, as the sidecar's
  // own port is (src/gateway/front.ts; PORTHOLE_HTTP_FRONT=off turns both off).
  const front =
    options.front !== false && gateway.frontHooks !== undefined
      ? attachFront(tlsServer.server, gateway.frontHooks, { headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxHeaderSize: 16 * 1024 })
      : undefined;
  const challenges = createChallengeResponder();
  const plainHandler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      const keyAuthorization = challenges.answer(req.url ?? '');
      if (keyAuthorization !== undefined) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(keyAuthorization), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : keyAuthorization);
        return;
      }
    }
    gateway.handleRequest(req, res);
  };
  const plainServer = createGatewayServer({ ...pick(gateway), handleRequest: plainHandler });
  let secureContext: SecureContext | undefined = cert ? contextFor(cert) : undefined;

  return {
    onStream(stream, meta) {
      stream.on('error', () => stream.destroy());
      if (meta.tls === false) {
        // The visitor of a terminate-mode relay still spoke https, and the Host allowlist
        // still admits only this desk's name; an ACME validation is answered above.
        gateway.markTunnelSocket(stream, meta.remote);
        plainServer.server.emit('connection', stream);
        return;
      }
      const context = secureContext;
      if (context === undefined) {
        // No certificate yet (ACME still working): end the stream, the visitor's client
        // reports a failed handshake rather than waiting.
        stream.destroy();
        return;
      }
      const socket = new TLSSocket(stream, { isServer: true, secureContext: context, ALPNProtocols: ['http/1.1'] });
      socket.on('error', () => socket.destroy());
      gateway.markTunnelSocket(socket, meta.remote);
      tlsServer.server.emit('connection', socket);
    },
    setCertificate(next) {
      secureContext = contextFor(next);
    },
    get hasCertificate() {
      return secureContext !== undefined;
    },
    challenges,
    close() {
      front?.close();
      tlsServer.closeConnections();
      plainServer.closeConnections();
      challenges.clear();
    },
  };
}

function contextFor(cert: TunnelCertificate): SecureContext {
  return createSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' });
}

/** What createGatewayServer uses of a gateway, bound to it. */
function pick(gateway: Gateway): Pick<Gateway, 'handleRequest' | 'handleCheckContinue' | 'handleUpgrade'> {
  return { handleRequest: gateway.handleRequest, handleCheckContinue: gateway.handleCheckContinue, handleUpgrade: gateway.handleUpgrade };
}
