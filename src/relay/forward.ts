// The relay's desk → visitor direction: like `from.pipe(to)`, but what arrives during one
// event-loop turn reaches the visitor's socket in one write. The link's TLS hands the mux
// one 16 KiB record per 'data' event, so a plain pipe made one write syscall (and one
// wake-up of the visitor) per 16 KiB; corked until setImmediate, the records one link read
// decrypted leave together as one writev (no copy: a TCP socket writes the buffers as they are).
import type { Readable, Writable } from 'node:stream';

/**
 * Bytes allowed to wait in `to` before `from` is paused. Above net.Socket's 16 KiB
 * high-water mark on purpose: a corked batch must not pause the source at its first record.
 * Memory stays bounded: a paused mux stream stops returning credit, so the desk stops too.
 */
export const FORWARD_LIMIT = 256 * 1024;

/**
 * Copies `from` into `to` until `from` ends (then ends `to`), with `to` corked per turn.
 * Call it before adding the caller's own 'error' listeners to `from` (see onClose).
 */
export function forwardBatched(from: Readable, to: Writable, limit: number = FORWARD_LIMIT): void {
  let corked = false;
  let waiting = false;
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    to.uncork();
  };
  const resume = (): void => {
    waiting = false;
    from.resume();
  };
  const onData = (chunk: Buffer): void => {
    if (!corked) {
      corked = true;
      to.cork();
      setImmediate(uncork);
    }
    to.write(chunk);
    // A write that crosses the high-water mark promises a 'drain', which resumes the source.
    if (to.writableLength >= limit && !waiting && to.writableNeedDrain) {
      waiting = true;
      from.pause();
      to.once('drain', resume);
    }
  };
  const onEnd = (): void => {
    to.end();
  };
  const detach = (): void => {
    from.off('data', onData);
    from.off('end', onEnd);
    from.off('error', uncork);
    to.off('drain', resume);
  };
  // A source that fails or closes without 'end' (the desk resets a stream before its FIN; a
  // reset after the FIN ends it cleanly, see MuxStream.peerStopped) is usually answered by
  // destroying the target: what this turn corked goes to
  // the socket first, as a plain pipe would have written it already. Registered before the
  // caller's own 'error' listeners, so it runs first.
  const onClose = (): void => {
    uncork();
    detach();
  };
  from.on('data', onData);
  from.once('end', onEnd);
  from.once('error', uncork);
  from.once('close', onClose);
  to.once('close', detach);
}
