// V8 garbage-collector settings for the two long-running processes that carry tunnel bytes,
// `porthole serve` (the desk) and `porthole relay`, applied once when either command starts.
// Never applied by the library: these flags are process-wide, an embedding app owns its own.
//
// Why (issue 3, docs/performance.md "Relay tunnel"): every chunk that crosses a Node socket or
// TLS layer is a new Buffer whose memory Node allocates outside the JS heap (socket reads,
// TLS records, the JS-stream copies of the desk's visitor TLS). Under a bulk transfer V8's
// default heuristics answered that with incremental marking started over and over, about
// 100 full (mark-compact) collections per GiB in both processes even though their heaps held
// only ~10 MB: concurrent marking and sweeping took 30–45% of the desk's CPU. Without
// incremental marking they scavenge instead (≈30 per GiB, ~1 ms each) and a full collection
// runs only when the old generation reaches its limit. Measured A/B on the 2-core bench
// machine, 1 GiB after a 50-connection load, interleaved rounds: relay bulk 231 → 317 MB/s,
// CPU per GiB desk 3.6 → 2.0 s and relay 2.4 → 1.4 s, req/s @50 within noise.
//
// Keeping the young generation at its initial size (growth factor 1: 1 MiB semi-spaces)
// bounds the memory that stays committed after a load: the default lets it grow to 2 × 16 MiB,
// which a 50-connection load reaches and keeps. Desk RSS after the load ~140 → ~105 MiB with
// both flags (the first alone raised it: the old generation then grows until its limit).
// Cost: more frequent scavenges, a few % of req/s at one connection, and full collections
// that are no longer incremental (their pause grows with the heap). docs/config.md tells
// operators how to opt out (Node refuses --incremental-marking in NODE_OPTIONS, so the
// documented opt-outs are a semi-space flag there, or the flag on node's own command line).
//
// `--semi-space-growth-factor` is read at every young-generation resize and
// `--incremental-marking` each time V8 considers starting to mark, so setting them after
// start-up takes effect (test/tunnel/gc-tuning.test.ts checks the first in a fresh process).
//
// The old-generation guard (below) restores the one thing incremental marking did that the
// settings above lose: a full collection when the old generation outgrows its live size.
// Without incremental marking V8 (Node 20) started a full collection only when an allocation
// *in* the old generation hit its limit; bytes that scavenges *promote* into it did not. So a
// process whose old generation grows mainly by promotion kept growing towards the heap's hard
// maximum (gigabytes): a plain-node loop that splits a 300 KB string into lines every 5 ms
// reached ~1 GB of heap in 4–6 s with both flags (34 MB with V8's defaults; with the guard ~100
// MB, test/tunnel/gc-tuning.test.ts), and the desk's old generation grew from ~20 to ~38 MB
// under a 50-connection load before a full collection came. The guard looks at the heap every
// GUARD_INTERVAL_MS and runs one full collection once it exceeds its size after the last one
// by OLD_GEN_HEADROOM_MIN (or half).
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const STREAMING_GC_FLAGS: readonly string[] = ['--no-incremental-marking', '--semi-space-growth-factor=1'];

/** Flags the user may have set on purpose; any of them means theirs win and nothing is applied. */
const USER_GC_FLAG = /^--(no[-_])?(incremental[-_]marking|(max[-_]|min[-_])?semi[-_]space)/;

/**
 * Applies STREAMING_GC_FLAGS unless the process was started with GC flags of its own
 * (in `execArgv` or NODE_OPTIONS). Returns the flags applied (none when the user's win).
 */
export function tuneGcForStreaming(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  if (given.some((arg) => USER_GC_FLAG.test(arg))) return [];
  for (const flag of STREAMING_GC_FLAGS) setFlagsFromString(flag);
  startOldGenerationGuard();
  return [...STREAMING_GC_FLAGS];
}

/**
 * Heap growth past the size left by the last full collection that triggers the next one:
 * max(OLD_GEN_HEADROOM_MIN, half that size). V8's own limit is up to 4× the live size plus
 * 16 MiB; a full collection of the ~10–15 MB heaps measured here takes ~5–10 ms (not
 * incremental), so one every few seconds under load costs well under 1% of a core.
 */
const OLD_GEN_HEADROOM_MIN = 8 * 1024 * 1024;

/**
 * How often the guard looks at the heap. A timer, not a `gc` PerformanceObserver: the observer
 * measured a few % of req/s @50 (a JS callback per scavenge, ~100/s under load); a look every
 * 250 ms costs a few µs. Growth between two looks is bounded by the allocation rate.
 */
const GUARD_INTERVAL_MS = 250;

let guard: NodeJS.Timeout | undefined;

/**
 * Starts the old-generation guard (once per process). The full collection uses V8's `gc`
 * function, fetched from a fresh context while `--expose-gc` is briefly on: this context and
 * any created later never see a global `gc`.
 */
function startOldGenerationGuard(): void {
  if (guard) return;
  setFlagsFromString('--expose-gc');
  // Called without options: an options object from this context is not understood by a
  // function from another one, and V8 then runs a scavenge instead (measured on Node 20).
  const collect = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  // The lowest heap seen since the last full collection: V8's own collections lower it too.
  let base = getHeapStatistics().used_heap_size;
  guard = setInterval(() => {
    const used = getHeapStatistics().used_heap_size;
    if (used < base) base = used;
    else if (used > base + Math.max(OLD_GEN_HEADROOM_MIN, base / 2)) {
      collect();
      base = getHeapStatistics().used_heap_size;
    }
  }, GUARD_INTERVAL_MS);
  guard.unref();
}
