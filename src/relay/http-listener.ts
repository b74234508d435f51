// The relay's optional plain-HTTP listener: everything is redirected to https, except ACME
// HTTP-01 challenge paths (RFC 8555 §8.3) for a desk's name, which go to that desk — so a
// desk can obtain its own certificate through the relay without the relay holding it — and
// those for the relay's own name, answered here when the relay gets its certificate by ACME.
import { refuse } from './refuse.js';
import { createServer, type Server, type Socket } from 'node:net';
import { ACME_CHALLENGE_PREFIX } from '../acme/challenges.js';
import { parseHostHeader } from '../auth/ip.js';
import { matchDomain } from './names.js';

export interface HttpListenerOptions {
  host: string;
  port: number;
  domain: string;
  /** Port of the relay's TLS listener, for the redirect. */
  httpsPort: () => number;
  /** The relay's own key authorization for this request target (ACME for the relay's own name), if any. */
  ownChallenge?(target: string): string | undefined;
  /** Hands an ACME challenge connection (its first bytes included) to the named desk; false if it is offline. */
  toDesk(name: string, socket: Socket, first: Buffer): boolean;
  /** Request head must arrive within this (slowloris). Default 10 s. */
  headTimeoutMs?: number;
}

const MAX_HEAD = 8 * 1024;

function answer(socket: Socket, status: string, headers: Record<string, string>, body: string): void {
  const head = Object.entries({ ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  // The head's reader is done with this socket (it may have paused it): refuse() reads and
  // drops the rest, so the peer's FIN is seen and the socket never lingers half-open.
  socket.removeAllListeners('data');
  refuse(socket, `HTTP/1.1 ${status}\r\n${head}\r\n${body}`);
}

export function startHttpListener(o: HttpListenerOptions): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), o.headTimeoutMs ?? 10_000);
    socket.once('close', () => clearTimeout(timer));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD) answer(socket, '431 Request Header Fields Too Large', {}, 'request head too large\n');
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const [method, target] = (lines[0] ?? '').split(' ');
      const hostLine = lines.find((l) => /^host:/i.test(l));
      const host = parseHostHeader(hostLine?.slice(5).trim());
      const m = host ? matchDomain(host.hostname, o.domain) : undefined;
      if (!m || !target?.startsWith('/')) {
        answer(socket, '400 Bad Request', {}, 'unknown host\n');
        return;
      }
      if (m.kind === 'apex' && method === 'GET' && target.startsWith(ACME_CHALLENGE_PREFIX)) {
        const keyAuthorization = o.ownChallenge?.(target);
        if (keyAuthorization === undefined) answer(socket, '404 Not Found', {}, 'no such challenge\n');
        else answer(socket, '200 OK', {}, keyAuthorization);
        return;
      }
      if (m.kind === 'sub' && method === 'GET' && target.startsWith(ACME_CHALLENGE_PREFIX)) {
        if (!o.toDesk(m.name, socket, buf)) answer(socket, '404 Not Found', {}, 'no desk is online at this name\n');
        return;
      }
      const port = o.httpsPort();
      const location = `https://${host!.hostname}${port === 443 ? '' : `:${port}`}${target}`;
      answer(socket, '308 Permanent Redirect', { Location: location }, `${location}\n`);
    };
    socket.on('data', onData);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
