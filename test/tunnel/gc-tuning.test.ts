// The serve/relay GC settings take effect when set after start-up, in a fresh process, and
// a user's own GC flags win over them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

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
