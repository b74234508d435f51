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
import { setFlagsFromString } from 'node:v8';

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
  return [...STREAMING_GC_FLAGS];
}
