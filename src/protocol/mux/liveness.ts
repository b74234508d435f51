// Liveness of a session: PING after pingIntervalMs without receiving anything, and give up
// (DEAD_LINK) after deadAfterMs without receiving anything. Any inbound byte counts, so a
// busy link costs no pings; PINGs also serve ping() for round-trip times.
import { performance } from 'node:perf_hooks';
import { encodePing } from './frames.js';

export interface LivenessHooks {
  sendPing(frame: Buffer): void;
  dead(idleMs: number): void;
}

interface Waiter {
  sentAt: number;
  resolve(rttMs: number): void;
  reject(err: Error): void;
}

const noop = (): void => {};

export class Liveness {
  private lastReceived = performance.now();
  /** lastReceived at the time of the last automatic PING (NaN: none since). */
  private pingedAt = Number.NaN;
  private seq = 0;
  private readonly waiters = new Map<number, Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private recheck: NodeJS.Immediate | undefined;

  constructor(
    private readonly opts: { pingIntervalMs: number; deadAfterMs: number },
    private readonly hooks: LivenessHooks,
  ) {
    this.arm(opts.pingIntervalMs);
  }

  /** Called for every inbound chunk: keep it cheap. */
  received(): void {
    this.lastReceived = performance.now();
  }

  ping(): Promise<number> {
    this.seq = (this.seq + 1) >>> 0;
    const seq = this.seq;
    const opaque = Buffer.alloc(8);
    opaque.writeUInt32BE(seq, 4);
    return new Promise<number>((resolve, reject) => {
      this.waiters.set(seq, { sentAt: performance.now(), resolve, reject });
      this.hooks.sendPing(encodePing(opaque));
    });
  }

  /** A PONG arrived; answers nobody asked for are ignored. */
  pong(opaque: Buffer): void {
    if (opaque.readUInt32BE(0) !== 0) return;
    const seq = opaque.readUInt32BE(4);
    const w = this.waiters.get(seq);
    if (w === undefined) return;
    this.waiters.delete(seq);
    w.resolve(performance.now() - w.sentAt);
  }

  stop(err: Error): void {
    clearTimeout(this.timer);
    clearImmediate(this.recheck);
    this.timer = undefined;
    this.recheck = undefined;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => this.check(), Math.max(1, Math.ceil(delayMs)));
    this.timer.unref();
  }

  private check(): void {
    const now = performance.now();
    const idle = now - this.lastReceived;
    if (idle >= this.opts.deadAfterMs) {
      // Timers run before the loop polls for I/O: if this process itself was stalled, bytes
      // may be waiting unread. Look again after this iteration's poll phase has read them.
      this.recheck = setImmediate(() => {
        this.recheck = undefined;
        const stillIdle = performance.now() - this.lastReceived;
        if (stillIdle >= this.opts.deadAfterMs) this.hooks.dead(stillIdle);
        else this.check();
      });
      return;
    }
    if (idle >= this.opts.pingIntervalMs && this.pingedAt !== this.lastReceived) {
      this.pingedAt = this.lastReceived;
      this.ping().catch(noop);
    }
    const nextPing = this.pingedAt === this.lastReceived ? Number.POSITIVE_INFINITY : this.lastReceived + this.opts.pingIntervalMs;
    this.arm(Math.min(nextPing, this.lastReceived + this.opts.deadAfterMs) - now);
  }
}
