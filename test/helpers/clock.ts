// A hand-driven clock for code that takes `now: () => number` (bans, codes, sessions).
export function clock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}
