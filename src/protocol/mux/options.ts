// Options of a mux session: one interface, every default named and justified here, applied
// once by resolveMuxOptions, which throws INVALID_ARGUMENT on the first bad value.
import { PortholeError } from '../../errors.js';
import { MAX_FRAME, MAX_WINDOW, MIN_FRAME, MIN_WINDOW } from './frames.js';

export interface MuxOptions {
  /**
   * Which id parity this side opens: true → odd ids (the relay), false → even (the desk).
   * The two ends of one connection must differ.
   */
  isOpener: boolean;
  /**
   * Initial receive window of every stream, in bytes: how much the peer may send on one
   * stream before this side's consumer has read it. Default 256 KiB — above the
   * bandwidth-delay product of a home uplink (50 Mbit/s × 40 ms ≈ 250 KB). On loopback
   * (bench/mux.ts) 64 KiB halved one stream's throughput and 1 MiB gained nothing clear.
   * Worst-case buffered memory is initialWindow × maxStreams per session (256 MiB at the
   * defaults, if every stream's consumer stalls at once).
   */
  initialWindow?: number;
  /**
   * Largest receive window a stream grows to (auto-tuning). A stream starts at
   * initialWindow and doubles its window, up to this, when data arrives faster than its
   * credit goes back while its reader keeps up (session.growWindow). 256 KiB is below what
   * one bulk stream needs on a fast path: the credit's round trip through the relay, TLS and
   * the visitor's socket is ~1 ms on one machine. A 1 GiB download through the relay
   * measured 264–295 MB/s at a fixed 256 KiB and 405–454 growing to 4 MiB. On a path slower
   * than the window, or to a slow reader, the window does not grow. Default 4 MiB; equal to
   * initialWindow: no growth.
   */
  maxWindow?: number;
  /**
   * Bytes all streams of a session together may grow beyond initialWindow, so growth adds
   * at most this to the worst-case buffered memory (initialWindow × maxStreams). Default
   * 16 MiB: four streams at maxWindow. Returned as streams close.
   */
  windowBudget?: number;
  /**
   * Largest DATA payload this side accepts (and advertises). Default 64 KiB: the size of
   * one socket read; 16 KiB measured ~10% more CPU per GiB, 256 KiB no less, and a frame
   * holds the wire only ~50 µs at 1 GB/s, so streams stay finely interleaved.
   */
  maxFrame?: number;
  /** Most streams the peer may have open at once toward this side; more are refused. Default 1024. */
  maxStreams?: number;
  /** Largest OPEN metadata (e.g. the visitor's address as JSON) accepted. Default 4 KiB. */
  maxOpenMeta?: number;
  /** Send a PING after this long without receiving anything. Default 5000 ms. */
  pingIntervalMs?: number;
  /** Close the session (code DEAD_LINK) after this long without receiving anything. Default 10000 ms. */
  deadAfterMs?: number;
}

export type ResolvedMuxOptions = Required<MuxOptions>;

export const MUX_DEFAULTS = {
  initialWindow: 256 * 1024,
  maxWindow: 4 * 1024 * 1024,
  windowBudget: 16 * 1024 * 1024,
  maxFrame: 64 * 1024,
  maxStreams: 1024,
  maxOpenMeta: 4 * 1024,
  pingIntervalMs: 5_000,
  deadAfterMs: 10_000,
} as const;

const LIMITS: Record<keyof typeof MUX_DEFAULTS, [number, number]> = {
  initialWindow: [MIN_WINDOW, MAX_WINDOW],
  maxWindow: [MIN_WINDOW, MAX_WINDOW],
  windowBudget: [0, MAX_WINDOW],
  maxFrame: [MIN_FRAME, MAX_FRAME],
  maxStreams: [0, 1_000_000],
  maxOpenMeta: [0, 1024 * 1024],
  pingIntervalMs: [1, 3_600_000],
  deadAfterMs: [1, 3_600_000],
};

function invalid(name: string, why: string): PortholeError {
  return new PortholeError('INVALID_ARGUMENT', `invalid mux option ${name}: ${why}`);
}

export function resolveMuxOptions(options: MuxOptions): ResolvedMuxOptions {
  if (options === null || typeof options !== 'object') throw invalid('options', 'expected an object');
  if (typeof options.isOpener !== 'boolean') throw invalid('isOpener', 'expected true (odd ids, the relay) or false (even ids, the desk)');
  const out: ResolvedMuxOptions = { isOpener: options.isOpener, ...MUX_DEFAULTS };
  for (const key of Object.keys(MUX_DEFAULTS) as (keyof typeof MUX_DEFAULTS)[]) {
    const value = options[key];
    if (value === undefined) continue;
    const [min, max] = LIMITS[key];
    if (!Number.isInteger(value) || value < min || value > max) throw invalid(key, `expected an integer from ${min} to ${max}, got ${String(value)}`);
    out[key] = value;
  }
  if (options.maxWindow === undefined && out.maxWindow < out.initialWindow) out.maxWindow = out.initialWindow;
  if (out.maxWindow < out.initialWindow) throw invalid('maxWindow', `must be at least initialWindow (${out.initialWindow})`);
  if (out.deadAfterMs <= out.pingIntervalMs) {
    throw invalid('deadAfterMs', `must exceed pingIntervalMs (${out.pingIntervalMs}), or the link is declared dead before it is pinged`);
  }
  return out;
}
