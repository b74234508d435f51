// Turns the samples of several runs into the printed report: per-metric medians, the
// figures table, ratios against the bare app and Caddy, and the goals from the issue with
// PASS/MISS. A report, never a test: a MISS does not change the exit code.
import type { WrkResult } from './wrk.js';

export type TargetId = 'direct' | 'sidecar' | 'sidecar-b' | 'nginx' | 'caddy' | 'embedded' | 'floor' | 'express' | 'embedded-express';

export const TARGET_LABELS: Record<TargetId, string> = {
  direct: 'direct (bare app)',
  sidecar: 'porthole serve (auth on)',
  'sidecar-b': 'porthole serve B (BENCH_PORTHOLE_BIN_B)',
  nginx: 'nginx (plain proxy)',
  caddy: 'Caddy (plain proxy)',
  embedded: 'embedded createGateway (auth on)',
  floor: 'minimal token check (the floor)',
  express: 'Express 5 app, bare',
  'embedded-express': 'Express 5 app in createGateway',
};

export interface Sample {
  c1: WrkResult;
  c50: WrkResult;
  /** MB/s (10^6 bytes per second). */
  stream: number;
  /** CPU used by processes outside the benchmark during the sample, in cores (background.ts). */
  foreignCores: number | undefined;
}

/** Background CPU (in cores) above which a sample is flagged as disturbed. */
export const FOREIGN_LIMIT = 0.15;

export interface Row {
  id: TargetId;
  rps1: number;
  p50_1: number;
  p99_1: number;
  rps50: number;
  p50_50: number;
  p99_50: number;
  stream: number;
  /** Samples the medians are taken over, of `total`. */
  runs: number;
  total: number;
  /** False when every sample was disturbed: the figures are shown but mean little. */
  valid: boolean;
  /** Runs in which wrk saw non-2xx answers or socket errors, or the machine was not quiet. */
  flagged: string[];
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Why a sample is not a valid measurement (wrk errors, a busy machine); empty when it is. */
function problems(s: Sample): string[] {
  const out: string[] = [];
  for (const [name, r] of [['@1', s.c1], ['@50', s.c50]] as const) {
    if (r.non2xx > 0) out.push(`${name}: ${r.non2xx} non-2xx answers`);
    if (r.socketErrors > 0) out.push(`${name}: ${r.socketErrors} socket errors`);
  }
  if (s.foreignCores !== undefined && s.foreignCores > FOREIGN_LIMIT) {
    out.push(`other processes used ${s.foreignCores.toFixed(2)} cores meanwhile`);
  }
  return out;
}

/**
 * Medians per metric over the clean samples; only when no sample is clean, over all of them
 * (and the row is marked). Disturbed samples are listed either way.
 */
export function summarize(id: TargetId, samples: Sample[]): Row {
  const flagged: string[] = [];
  const clean = samples.filter((s) => problems(s).length === 0);
  const used = clean.length > 0 ? clean : samples;
  samples.forEach((s, i) => {
    const p = problems(s);
    if (p.length > 0) {
      flagged.push(`run ${i + 1}: ${p.join('; ')} — ${clean.length > 0 ? 'left out of the medians' : 'NO CLEAN RUN: figures not valid'}`);
    }
  });
  return {
    id,
    rps1: median(used.map((s) => s.c1.rps)),
    p50_1: median(used.map((s) => s.c1.p50Ms)),
    p99_1: median(used.map((s) => s.c1.p99Ms)),
    rps50: median(used.map((s) => s.c50.rps)),
    p50_50: median(used.map((s) => s.c50.p50Ms)),
    p99_50: median(used.map((s) => s.c50.p99Ms)),
    stream: median(used.map((s) => s.stream)),
    runs: used.length,
    total: samples.length,
    valid: clean.length > 0,
    flagged,
  };
}

const rps = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const ms = (v: number) => (!Number.isFinite(v) ? '–' : v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1));
const mbs = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const ratio = (a: number, b: number | undefined) => (b === undefined || !Number.isFinite(a) || !(b > 0) ? '–' : `${(a / b).toFixed(2)}×`);

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

export function figuresTable(rows: Row[]): string {
  const caddy = rows.find((r) => r.id === 'caddy');
  const direct = rows.find((r) => r.id === 'direct');
  return table(
    ['target', 'req/s @1', 'p50/p99 @1 (ms)', 'req/s @50', 'p50/p99 @50 (ms)', 'stream MB/s', '@50 ×direct', '@50 ×Caddy'],
    rows.map((r) => [
      TARGET_LABELS[r.id] + (r.valid ? (r.runs < r.total ? ` (${r.runs} of ${r.total} runs)` : '') : ' (!)'),
      rps(r.rps1),
      `${ms(r.p50_1)} / ${ms(r.p99_1)}`,
      rps(r.rps50),
      `${ms(r.p50_50)} / ${ms(r.p99_50)}`,
      mbs(r.stream),
      ratio(r.rps50, direct?.rps50),
      ratio(r.rps50, caddy?.rps50),
    ]),
  );
}

export function ratiosTable(rows: Row[]): string {
  const caddy = rows.find((r) => r.id === 'caddy');
  const direct = rows.find((r) => r.id === 'direct');
  return table(
    ['target', 'req/s @1 ×direct', 'req/s @50 ×direct', 'stream ×direct', 'req/s @1 ×Caddy', 'req/s @50 ×Caddy', 'p99 @50 ×Caddy', 'stream ×Caddy'],
    rows.map((r) => [
      TARGET_LABELS[r.id],
      ratio(r.rps1, direct?.rps1),
      ratio(r.rps50, direct?.rps50),
      ratio(r.stream, direct?.stream),
      ratio(r.rps1, caddy?.rps1),
      ratio(r.rps50, caddy?.rps50),
      ratio(r.p99_50, caddy?.p99_50),
      ratio(r.stream, caddy?.stream),
    ]),
  );
}

export interface Goal {
  text: string;
  verdict: 'PASS' | 'MISS' | 'n/a';
  detail: string;
}

/** The goals from the issue, judged on the medians. */
export function goals(rows: Row[]): Goal[] {
  const get = (id: TargetId) => rows.find((r) => r.id === id);
  const sidecar = get('sidecar');
  const caddy = get('caddy');
  const embedded = get('embedded');
  const direct = get('direct');
  const judge = (ok: boolean | undefined, detail: string): Pick<Goal, 'verdict' | 'detail'> =>
    ok === undefined ? { verdict: 'n/a', detail: 'target not measured' } : { verdict: ok ? 'PASS' : 'MISS', detail };
  const out: Goal[] = [];
  out.push({
    text: 'sidecar (auth on) req/s @50 ≥ 1.5× Caddy',
    ...judge(
      sidecar && caddy && sidecar.rps50 >= 1.5 * caddy.rps50,
      `${rps(sidecar?.rps50 ?? Number.NaN)} vs 1.5 × ${rps(caddy?.rps50 ?? Number.NaN)} = ${rps(1.5 * (caddy?.rps50 ?? Number.NaN))} (${ratio(sidecar?.rps50 ?? Number.NaN, caddy?.rps50)})`,
    ),
  });
  out.push({
    text: 'sidecar p99 @50 no worse than Caddy',
    ...judge(
      sidecar && caddy && sidecar.p99_50 <= caddy.p99_50,
      `${ms(sidecar?.p99_50 ?? Number.NaN)} ms vs ${ms(caddy?.p99_50 ?? Number.NaN)} ms`,
    ),
  });
  out.push({
    text: 'sidecar streams at least as fast as Caddy',
    ...judge(
      sidecar && caddy && sidecar.stream >= caddy.stream,
      `${mbs(sidecar?.stream ?? Number.NaN)} vs ${mbs(caddy?.stream ?? Number.NaN)} MB/s (${ratio(sidecar?.stream ?? Number.NaN, caddy?.stream)})`,
    ),
  });
  out.push({
    text: 'embedded gateway keeps ≥ 95% of the bare app req/s (@50)',
    ...judge(
      embedded && direct && embedded.rps50 >= 0.95 * direct.rps50,
      `${rps(embedded?.rps50 ?? Number.NaN)} vs ${rps(direct?.rps50 ?? Number.NaN)} (${ratio(embedded?.rps50 ?? Number.NaN, direct?.rps50)}; @1: ${ratio(embedded?.rps1 ?? Number.NaN, direct?.rps1)})`,
    ),
  });
  const floor = get('floor');
  if (floor && direct) {
    // Not a goal: the least any token gateway in the app's process adds (app-process.ts, mode floor).
    out.push({
      text: '(for information) the floor — a minimal in-process token check — keeps ≥ 95% of the bare app (@50)',
      ...judge(
        floor.rps50 >= 0.95 * direct.rps50,
        `${rps(floor.rps50)} vs ${rps(direct.rps50)} (${ratio(floor.rps50, direct.rps50)}; @1: ${ratio(floor.rps1, direct.rps1)})`,
      ),
    });
  }
  const express = get('express');
  const embeddedExpress = get('embedded-express');
  if (express && embeddedExpress) {
    // Not the issue's goal (that one is against the raw handler above): what a typical embedding app keeps.
    out.push({
      text: '(for information) embedded gateway in front of an Express app keeps ≥ 95% of bare Express (@50)',
      ...judge(
        embeddedExpress.rps50 >= 0.95 * express.rps50,
        `${rps(embeddedExpress.rps50)} vs ${rps(express.rps50)} (${ratio(embeddedExpress.rps50, express.rps50)}; @1: ${ratio(embeddedExpress.rps1, express.rps1)})`,
      ),
    });
  }
  return out;
}

export function goalsText(list: Goal[], rows: Row[]): string {
  const invalid = rows.filter((r) => !r.valid).map((r) => TARGET_LABELS[r.id]);
  const note = invalid.length > 0 ? `\n  (no undisturbed sample for ${invalid.join(', ')}: verdicts involving it mean little)` : '';
  return list.map((g) => `  ${g.verdict.padEnd(4)}  ${g.text}: ${g.detail}`).join('\n') + note;
}
