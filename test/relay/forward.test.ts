// The relay's desk → visitor forwarding: every byte in order, the end passed on, and the
// source paused while the visitor does not read (memory stays bounded), over a real socket.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { FORWARD_LIMIT, forwardBatched } from '../../src/relay/forward.js';

async function socketPair(t: { after(fn: () => void): void }): Promise<{ client: net.Socket; server: net.Socket }> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const client = net.connect((listener.address() as AddressInfo).port, '127.0.0.1');
  const [server] = (await once(listener, 'connection')) as [net.Socket];
  listener.close();
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  return { client, server };
}

function chunk(i: number, size = 16 * 1024): Buffer {
  return Buffer.alloc(size, i % 251);
}

test('forwards every chunk in order, batched per turn, and ends the target', async (t) => {
  const { client, server } = await socketPair(t);
  const from = new Readable({ read() {} });
  let writes = 0;
  const writev = client._writev!.bind(client);
  client._writev = (chunks, cb) => {
    writes++;
    writev(chunks, cb);
  };
  forwardBatched(from, client);
  const received: Buffer[] = [];
  server.on('data', (d: Buffer) => received.push(d));
  const ended = once(server, 'end');
  await new Promise((r) => setImmediate(r)); // the source is flowing now
  // 12 records in one turn, as one link read decrypts several: one corked write.
  for (let i = 0; i < 12; i++) from.push(chunk(i));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(writes, 1, 'one write for the turn, not one per record');
  // Then more than the limit in one turn: written in batches of about the limit, in order.
  for (let i = 12; i < 76; i++) from.push(chunk(i));
  from.push(null);
  await ended;
  const all = Buffer.concat(received);
  assert.equal(all.length, 76 * 16 * 1024);
  for (let i = 0; i < 76; i++) assert.equal(all[i * 16 * 1024], i % 251, `chunk ${i} in place`);
  assert.ok(writes <= 1 + Math.ceil((64 * 16 * 1024) / FORWARD_LIMIT) + 1, `batched (saw ${writes} writes)`);
});

test('pauses the source while the target cannot write, and resumes when it drains', async (t) => {
  const { client, server } = await socketPair(t);
  server.pause(); // the visitor stops reading: the kernel buffers fill, then the socket's
  let pushed = 0;
  const from = new Readable({
    read() {
      this.push(pushed < 4096 ? chunk(pushed++, 64 * 1024) : null);
    },
  });
  forwardBatched(from, client);
  // Wait until the source is paused: the socket holds the limit and the kernel is full.
  const deadline = Date.now() + 10_000;
  while (from.readableFlowing !== false && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(from.readableFlowing, false, 'source paused');
  const held = client.writableLength;
  assert.ok(held >= FORWARD_LIMIT && held < FORWARD_LIMIT + 16 * 64 * 1024, `bounded: ${held} bytes waiting`);
  const pausedAt = pushed;
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(pushed - pausedAt <= 2, 'nothing more is pulled from the source while paused');
  // The visitor reads again: everything flows to the end.
  let got = 0;
  server.on('data', (d: Buffer) => (got += d.length));
  server.resume();
  await once(server, 'end');
  assert.equal(got, 4096 * 64 * 1024);
});

test('a source reset right after its last bytes: those bytes still reach the target before it is destroyed', async (t) => {
  const { client, server } = await socketPair(t);
  const from = new Readable({ read() {} });
  forwardBatched(from, client);
  // As the relay's splice does: an error on the stream destroys the visitor's socket.
  from.on('error', () => client.destroy());
  await new Promise((r) => setImmediate(r));
  let got = 0;
  server.on('data', (d: Buffer) => (got += d.length));
  const closed = once(server, 'close');
  server.on('error', () => {});
  for (let i = 0; i < 8; i++) from.push(chunk(i));
  // The desk's RST arrives in the same turn as its data (one link read).
  from.destroy(new Error('stream 7 reset by the peer'));
  await closed;
  assert.equal(got, 8 * 16 * 1024);
});
