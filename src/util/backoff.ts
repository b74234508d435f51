// Reconnect back-off shared by the long-lived clients (relay tunnel, managed SSH tunnel):
// capped exponential with full jitter, reset by a link that stayed up long enough.

export interface BackoffOptions {
  /** First ceiling, in ms. Default 500. */
  baseMs?: number;
  /** Cap on the ceiling, in ms. Default 30 000. */
  maxMs?: number;
  /** A link up at least this long resets the attempt count, in ms. Default 60 000. */
  stableMs?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = { baseMs: 500, maxMs: 30_000, stableMs: 60_000 };

export function backoffSettings(o: BackoffOptions | undefined): Required<BackoffOptions> {
  return {
    baseMs: o?.baseMs ?? BACKOFF_DEFAULTS.baseMs,
    maxMs: o?.maxMs ?? BACKOFF_DEFAULTS.maxMs,
    stableMs: o?.stableMs ?? BACKOFF_DEFAULTS.stableMs,
  };
}

/**
 * The wait before attempt `attempt + 1` (attempts count from 1). Full jitter (AWS
 * architecture blog): uniform in [0, min(cap, base·2^(attempt-1))]. A `permanent` failure
 * (retrying sooner cannot help) waits between half the cap and the cap.
 */
export function backoffDelay(attempt: number, o: { baseMs: number; maxMs: number }, permanent = false, random: () => number = Math.random): number {
  if (permanent) return Math.floor(o.maxMs / 2 + (random() * o.maxMs) / 2);
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 20));
  return Math.floor(random() * ceiling);
}

/**
 * Waits `ms`, or less when `emitter` emits 'wake' (a stop() cutting the back-off short).
 * The timer and the listener are both gone once it resolves, however it ended.
 */
export function delayUnlessWoken(emitter: { once(e: 'wake', f: () => void): unknown; off(e: 'wake', f: () => void): unknown }, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      emitter.off('wake', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    emitter.once('wake', done);
  });
}
