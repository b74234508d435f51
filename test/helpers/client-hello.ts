// Real ClientHellos for the parser's tests: the first TLS record a Node client sends.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';

/** The first TLS record a Node client sends to a plain TCP server (its ClientHello). */
export async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = tls.connect({ host: '127.0.0.1', port, ...options });
  client.on('error', () => {}); // the handshake fails by design: only its first bytes matter
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  let bytes = Buffer.alloc(0);
  // Framed by the record header alone, so the capture does not depend on the parser under test.
  while (bytes.length < 5 || bytes.length < 5 + bytes.readUInt16BE(3)) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    bytes = Buffer.concat([bytes, chunk]);
  }
  socket.destroy();
  // Not events.once: it would reject on the client's expected 'error'.
  if (!client.closed) await new Promise((resolve) => client.once('close', resolve));
  server.close();
  await once(server, 'close');
  return bytes;
}
