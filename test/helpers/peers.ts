// Real test peers (sshd, nginx, caddy, …) from Debian packages. A test that needs one
// skips with a reason when it is missing, and fails instead under
// PORTHOLE_TEST_REQUIRE_ALL=1 (CI sets it; .ci/run installs the packages).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const requireAll = process.env['PORTHOLE_TEST_REQUIRE_ALL'] === '1';

/** Absolute path of an executable on PATH or in the sbin directories, or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/**
 * For `describe(name, { skip }, …)`: false when the peer is usable, else the reason to
 * skip — or, under PORTHOLE_TEST_REQUIRE_ALL=1, an error that fails the file.
 */
export function skipUnless(peer: string, problem: string | undefined): string | false {
  if (problem === undefined) return false;
  if (requireAll) throw new Error(`PORTHOLE_TEST_REQUIRE_ALL=1 but ${peer} is unusable: ${problem}`);
  return `${peer} unusable: ${problem}`;
}

/** skipUnless for an executable: `const skip = skipUnlessExecutable('nginx')`. */
export function skipUnlessExecutable(name: string): string | false {
  return skipUnless(name, findExecutable(name) ? undefined : 'not installed');
}
