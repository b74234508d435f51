// Ending a connection the relay refuses, without leaking it. A socket the relay paused (to
// read the ClientHello or a request head, then decide) never sees the peer's FIN again, so a
// plain end() would leave it half-open for good: one file descriptor per refused visitor,
// until the relay can accept no one (docs/security.md, "Relay limits").
import type { Duplex } from 'node:stream';

/** How long a refused connection may linger after its last bytes before it is destroyed. */
export const REFUSE_LINGER_MS = 5_000;

/**
 * Sends `last`, ends the connection, reads and drops whatever the peer still sends (so its
 * FIN or RST is seen), and destroys the socket REFUSE_LINGER_MS later at the latest.
 */
export function refuse(socket: Duplex, last?: string | Buffer): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), REFUSE_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
  if (last === undefined) socket.end();
  else socket.end(last);
}
