// Runs the whole suite with node:test through tsx. Node 20's --test does not expand
// globs, so the files are listed here. Arguments narrow the run to files whose path
// contains any of them: `npm run test:only -- auth proxy`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk(join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  // In-process tests keep secrets in files, never in the developer's real OS keyring.
  { stdio: 'inherit', cwd: root, env: { ...process.env, PORTHOLE_SECRET_STORE: process.env.PORTHOLE_SECRET_STORE || 'file' } },
);
process.exit(r.status ?? 1);
