// A complete control-plane client in Node with the SDK (`porthole/client`):
//
//   PORTHOLE_URL=https://desk.example:7070 PORTHOLE_TOKEN=ph_… \
//     node examples/control-client.mjs [--pin sha256/…]
//
// It connects (HMAC proof bound to the TLS connection: the token never crosses the wire),
// prints the hello, calls `health` and `status`, waits for one event (any name) for up to
// --wait seconds, and exits 0; on an error it prints the stable code and exits 1.
import { connect, ControlError } from 'porthole/client';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

try {
  const client = await connect({
    // url and token default to PORTHOLE_URL and PORTHOLE_TOKEN
    pin: opt('--pin'),
    deviceName: 'example (node)',
  });
  console.log(JSON.stringify({ step: 'hello', clientId: client.hello.clientId, methods: client.hello.methods }));
  console.log(JSON.stringify({ step: 'health', result: await client.request('health') }));
  const status = await client.request('status');
  console.log(JSON.stringify({ step: 'status', version: status.version }));
  const waitSeconds = Number(opt('--wait') ?? '0');
  if (waitSeconds > 0) {
    const event = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ControlError('CONTROL_TIMEOUT', 'no event')), waitSeconds * 1000);
      client.on('*', (payload, name) => {
        clearTimeout(timer);
        resolve({ name, payload });
      });
      console.log(JSON.stringify({ step: 'waiting' }));
    });
    console.log(JSON.stringify({ step: 'event', ...event }));
  }
  await client.close();
} catch (err) {
  if (!(err instanceof ControlError)) throw err;
  console.error(`error: ${err.message} [${err.code}]`);
  process.exitCode = 1;
}
