// The dedicated listener porthole points Tailscale Serve at, and nothing else uses: a Unix
// socket in the gateway's private run directory where Tailscale can proxy to one, else a
// loopback port that accepts connections only from root (tailscaled) or our own user.
// Every request on it is verified (peer.ts) before the gateway sees it; one that fails is
// refused here (fail closed) and never reaches the pipeline as anything else.
import { existsSync, unlinkSync, chmodSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PortholeError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import { createGatewayServer } from '../gateway/listen.js';
import { sendError, writeSocketError } from '../gateway/respond.js';
import type { Logger } from '../log.js';
import type { PeerVerdict } from './peer.js';
import { loopbackPeerUid } from './peer-uid.js';

export interface TailscaleListener {
  kind: 'unix' | 'tcp';
  /** What `tailscale serve` is given: "unix:/path/tailscale.sock" or "http://127.0.0.1:PORT". */
  target: string;
  close(): Promise<void>;
}

export interface TailscaleListenerOptions {
  gateway: Gateway;
  /** A Unix socket path, or undefined for a loopback port. */
  socketPath?: string;
  verify: (req: IncomingMessage) => Promise<PeerVerdict>;
  logger: Logger;
  /** uids allowed to connect to the loopback port. Default: root and our own uid. */
  allowedUids?: readonly number[];
}

export async function listenTailscale(options: TailscaleListenerOptions): Promise<TailscaleListener> {
  const { gateway, verify, logger, socketPath } = options;
  const refuse = (req: IncomingMessage, err: PortholeError) => {
    logger.log('warn', 'tailscale listener refused a request', { code: err.code, reason: err.message, method: req.method });
  };
  // The gateway as the HTTP server sees it: each request is verified first, then marked.
  const guarded: Gateway = {
    ...gateway,
    handleRequest(req: IncomingMessage, res: ServerResponse) {
      verify(req).then(
        (v) => {
          if (!v.ok) {
            refuse(req, v.err);
            sendError(res, v.err);
            return;
          }
          gateway.markTailscaleRequest(req, v.peer);
          gateway.handleRequest(req, res);
        },
        () => sendError(res, new PortholeError('INTERNAL', 'internal error')),
      );
    },
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      socket.on('error', () => socket.destroy());
      verify(req).then(
        (v) => {
          if (!v.ok) {
            refuse(req, v.err);
            writeSocketError(socket, v.err);
            return;
          }
          gateway.markTailscaleRequest(req, v.peer);
          gateway.handleUpgrade(req, socket, head);
        },
        () => writeSocketError(socket, new PortholeError('INTERNAL', 'internal error')),
      );
    },
  };
  const { server, closeConnections } = createGatewayServer(guarded);

  if (socketPath === undefined) {
    const allowed = new Set(options.allowedUids ?? [0, process.getuid?.() ?? 0]);
    let warned = false;
    server.prependListener('connection', (socket: Socket) => {
      const self = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
      const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
      const who = loopbackPeerUid(peer, self);
      if (who.kind === 'uid' && allowed.has(who.uid)) return;
      if (who.kind === 'unsupported') {
        // No /proc (macOS, Windows): the peer's user cannot be checked. docs/tailscale.md says so.
        if (!warned) logger.log('warn', 'tailscale listener cannot check which user connects on this platform');
        warned = true;
        return;
      }
      logger.log('warn', 'tailscale listener dropped a connection from another user', { uid: who.kind === 'uid' ? who.uid : null });
      socket.destroy();
    });
  } else if (existsSync(socketPath)) {
    unlinkSync(socketPath); // ours from a run that crashed: the gateway socket already proved no other gateway runs here
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (socketPath !== undefined) server.listen(socketPath, done);
    else server.listen(0, '127.0.0.1', done);
  });
  let target: string;
  if (socketPath !== undefined) {
    // tailscaled runs as root and is not held back by the mode; other users are, by 0700 on run/.
    chmodSync(socketPath, 0o600);
    target = `unix:${socketPath}`;
  } else {
    target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  return {
    kind: socketPath === undefined ? 'tcp' : 'unix',
    target,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        closeConnections();
      }),
  };
}
