// The CLI's call to the running gateway (src/cli/socket-client.ts) has a deadline: a gateway
// that accepts on its socket and never answers (stopped with SIGSTOP, wedged) is
// GATEWAY_UNREACHABLE, not a CLI that waits for ever.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, test } from 'node:test';
import { callGateway } from '../../src/cli/socket-client.js';
import { statePaths } from '../../src/secrets/paths.js';
import { listenUnix, tempDir } from '../helpers/servers.js';

const home = tempDir();
after(() => home.cleanup());

test('a gateway that accepts and never answers is GATEWAY_UNREACHABLE after the deadline', { timeout: 10_000 }, async () => {
  const paths = statePaths(home.dir);
  mkdirSync(dirname(paths.socketPath), { recursive: true, mode: 0o700 });
  const held: Socket[] = [];
  const server = createServer((s) => held.push(s)); // reads nothing, answers nothing
  await listenUnix(server, paths.socketPath);
  try {
    const t0 = Date.now();
    await assert.rejects(callGateway(paths, 'GET', '/_porthole/api/status', undefined, 300), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'GATEWAY_UNREACHABLE');
      assert.match(err.message, /did not answer/);
      return true;
    });
    assert.ok(Date.now() - t0 < 5_000);
  } finally {
    for (const s of held) s.destroy();
    server.close();
  }
});
