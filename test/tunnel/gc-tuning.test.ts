// The serve/relay GC settings take effect when set after start-up, in a fresh process, a
// user's own GC flags win over them, and the old-generation guard bounds a heap that grows
// by promotion (which, without incremental marking, V8 alone let grow past 1 GB).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { transformSync } from 'esbuild';

const MODULE = new URL('../../src/tunnel/gc-tuning.ts', import.meta.url).href;

/** Runs a fresh node that calls tuneGcForStreaming, allocates short-lived garbage and reports. */
function probe(nodeArgs: string[]): { applied: string[]; newSpaceMiB: number } {
  const script = `
    const { tuneGcForStreaming } = await import(${JSON.stringify(MODULE)});
    const { getHeapSpaceStatistics } = await import('node:v8');
    const applied = tuneGcForStreaming();
    const keep = [];
    for (let i = 0; i < 2e6; i++) { const o = { i, a: [i, i + 1], s: 'x' + i }; if (i % 500 === 0) keep.push(o); }
    const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(JSON.stringify({ applied, newSpaceMiB: ns.space_size / 1048576, kept: keep.length }));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { applied: string[]; newSpaceMiB: number };
}

test('applied after start-up: the young generation stays at its initial size', () => {
  const tuned = probe([]);
  assert.deepEqual(tuned.applied, ['--no-incremental-marking', '--semi-space-growth-factor=1']);
  assert.ok(tuned.newSpaceMiB <= 4, `new space ${tuned.newSpaceMiB} MiB`);
});

test("a user's own GC flag wins: nothing is applied and V8's defaults stay", () => {
  const own = probe(['--max-semi-space-size=16']);
  assert.deepEqual(own.applied, []);
  assert.ok(own.newSpaceMiB > 4, `new space grew to ${own.newSpaceMiB} MiB`);
});

/**
 * Runs a fresh plain node (no tsx: its loader happens to trigger full collections that hide the
 * problem) that tunes the GC, then splits a 300 KB string into lines every 5 ms for 4 s.
 * gc-tuning.ts imports only node: modules, so esbuild's transform of that one file is enough.
 */
function promotionHeavy(): { applied: string[]; maxHeapMiB: number } {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-gc-'));
  try {
    const source = readFileSync(new URL('../../src/tunnel/gc-tuning.ts', import.meta.url), 'utf8');
    writeFileSync(join(dir, 'gc-tuning.mjs'), transformSync(source, { loader: 'ts', format: 'esm' }).code);
    const script = `
      const { tuneGcForStreaming } = await import(${JSON.stringify(pathToFileURL(join(dir, 'gc-tuning.mjs')).href)});
      const applied = tuneGcForStreaming();
      let max = 0, lines = 0;
      const text = 'abc\\n'.repeat(75_000);
      const t0 = Date.now();
      await new Promise((done) => {
        const timer = setInterval(() => {
          lines += text.split('\\n').length;
          max = Math.max(max, process.memoryUsage().heapTotal / 1048576);
          if (Date.now() - t0 > 4000) { clearInterval(timer); done(); }
        }, 5);
      });
      console.log(JSON.stringify({ applied, maxHeapMiB: max, lines }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { applied: string[]; maxHeapMiB: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the old-generation guard: a heap that grows by promotion stays near its live size', () => {
  // Without the guard the tuned flags let this reach ~0.8–1 GB in 4 s (V8's defaults: ~35 MB);
  // with it ~100 MB: this loop allocates ~300 MB/s, and the guard looks every 250 ms.
  const tuned = promotionHeavy();
  assert.equal(tuned.applied.length, 2);
  assert.ok(tuned.maxHeapMiB < 250, `heap grew to ${tuned.maxHeapMiB.toFixed(1)} MiB`);
});

test('the guard runs in the tuned process only: gc stays hidden from its contexts', () => {
  const script = `
    const { tuneGcForStreaming } = await import(${JSON.stringify(MODULE)});
    const { runInNewContext } = await import('node:vm');
    tuneGcForStreaming();
    console.log(JSON.stringify([typeof globalThis.gc, runInNewContext('typeof gc')]));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), ['undefined', 'undefined']);
});
