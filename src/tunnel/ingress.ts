// Visitor streams from the tunnel enter the gateway in-process (never through a loopback
// TCP hop, so they can never look local): TLS is terminated here with the desk's own
// certificate (passthrough), the socket is marked as ingress class `tunnel` with the
// visitor's address, and handed to the gateway's HTTP server.
import { createSecureContext, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Gateway } from '../gateway/gateway.js';
import { createGatewayServer } from '../gateway/listen.js';
import type { VisitorMeta } from './client.js';

export interface TunnelIngress {
  onStream(stream: Duplex, meta: VisitorMeta): void;
  close(): void;
}

export function createTunnelIngress(gateway: Gateway, cert: { certPem: string; keyPem: string }): TunnelIngress {
  const { server, closeConnections } = createGatewayServer(gateway);
  const secureContext = createSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' });
  return {
    onStream(stream, meta) {
      stream.on('error', () => stream.destroy());
      if (meta.tls === false) {
        // Terminate mode: the relay ended the visitor's TLS and sends plaintext HTTP. The
        // visitor still spoke https, and the Host allowlist still admits only this desk's name.
        gateway.markTunnelSocket(stream, meta.remote);
        server.emit('connection', stream);
        return;
      }
      const socket = new TLSSocket(stream, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
      socket.on('error', () => socket.destroy());
      gateway.markTunnelSocket(socket, meta.remote);
      server.emit('connection', socket);
    },
    close() {
      closeConnections();
    },
  };
}
