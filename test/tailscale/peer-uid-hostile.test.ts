// The loopback listener's user check against a hostile local user: a process of another
// uid connects, writes its request and closes at once. Its socket is then orphaned (or in
// TIME_WAIT), and /proc/net/tcp reports such sockets with uid 0 — root, i.e. "tailscaled".
// The check must not take that for root. Real processes; needs root to run one as nobody.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loopbackPeerUid } from '../../src/tailscale/peer-uid.js';

const NOBODY = 65534;
const skip = process.platform !== 'linux' ? 'needs /proc/net/tcp' : process.getuid?.() !== 0 ? 'needs root to run a client as another user' : false;

describe('loopback peer uid: a client of another user that already closed', { skip }, () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];
  before(async () => {
    server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** Runs a client as `uid` that connects, sends a request, and (unless `stay`) closes and exits. */
  async function client(uid: number, stay: boolean): Promise<{ socket: Socket; stop(): void }> {
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const script = `const s = require('net').connect(${port}, '127.0.0.1', () => {
      s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Forwarded-For: 100.101.102.103\\r\\n\\r\\n');
      ${stay ? "process.stdout.write('ready\\n');" : 's.destroy(); process.exit(0);'}
    }); s.on('error', () => process.exit(0)); setTimeout(() => process.exit(0), 10000);`;
    const child = spawn(process.execPath, ['-e', script], { uid, gid: uid, stdio: ['ignore', 'pipe', 'inherit'] });
    if (stay) await once(child.stdout, 'data');
    else await once(child, 'exit');
    const socket = await accepted;
    return { socket, stop: () => child.kill() };
  }

  const uidOf = (s: Socket) =>
    loopbackPeerUid({ address: s.remoteAddress!, port: s.remotePort! }, { address: s.localAddress!, port: s.localPort! });

  test('a live client of another user is named by its own uid', async () => {
    const c = await client(NOBODY, true);
    try {
      assert.deepEqual(uidOf(c.socket), { kind: 'uid', uid: NOBODY });
    } finally {
      c.stop();
    }
  });

  test('the same client, closed before we look: unknown, never root', async () => {
    const c = await client(NOBODY, false);
    const who = uidOf(c.socket);
    assert.notDeepEqual(who, { kind: 'uid', uid: 0 }, 'an orphaned socket must not pass as root (tailscaled)');
    assert.deepEqual(who, { kind: 'unknown' });
  });
});
