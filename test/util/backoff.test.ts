// Reconnect back-off (src/util/backoff.ts): full jitter under an exponential, capped ceiling.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { backoffDelay, backoffSettings, delayUnlessWoken } from '../../src/util/backoff.js';

describe('backoffDelay', () => {
  const o = { baseMs: 500, maxMs: 30_000 };
  it('ceiling doubles per attempt up to the cap (random → 1)', () => {
    const top = (a: number) => backoffDelay(a, o, false, () => 0.999_999);
    assert.deepEqual([1, 2, 3, 4].map(top), [499, 999, 1999, 3999]);
    assert.equal(top(10), 29_999);
    assert.equal(top(1000), 29_999, 'no overflow for huge attempt counts');
  });
  it('is jittered down to zero; permanent failures wait between half the cap and the cap', () => {
    assert.equal(backoffDelay(5, o, false, () => 0), 0);
    assert.equal(backoffDelay(1, o, true, () => 0), 15_000);
    assert.equal(backoffDelay(1, o, true, () => 0.5), 22_500);
    assert.equal(backoffDelay(1, o, true, () => 0.999_999), 29_999);
  });
  it('fills defaults', () => {
    assert.deepEqual(backoffSettings({ baseMs: 10 }), { baseMs: 10, maxMs: 30_000, stableMs: 60_000 });
  });
});

it('delayUnlessWoken: ends at the timer, or at once on wake, and leaves no listener behind', async () => {
  const e = new EventEmitter();
  const t0 = performance.now();
  await delayUnlessWoken(e, 20);
  assert.ok(performance.now() - t0 >= 15);
  assert.equal(e.listenerCount('wake'), 0);
  const waiting = delayUnlessWoken(e, 60_000);
  e.emit('wake');
  await waiting;
  assert.equal(e.listenerCount('wake'), 0);
});
