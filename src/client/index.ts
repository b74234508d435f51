// `porthole/client` for Node: connect({ url, token, pin?, deviceName? }) to a gateway's
// control plane. URL and token default to PORTHOLE_URL and PORTHOLE_TOKEN. TLS is checked
// normally (system CAs), or against a pin (then a self-signed certificate is fine).
import { createPrivateKey, type KeyObject, sign as cryptoSign } from 'node:crypto';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { WebSocket } from 'ws';
import { EXPORTER_LABEL, EXPORTER_LENGTH } from '../control/wire.js';
import { type ControlClient, type CoreOptions, createClient, type Transport } from './core.js';
import { ControlError } from './errors.js';
import { type Pin, parsePin, pinMatches, pinMismatch } from './pin.js';
import { controlUrl } from './url.js';

export { ControlError } from './errors.js';
export { pair, type PairedDevice, type PairOptions } from './pair.js';
export type { ClientState, ControlClient } from './core.js';
export type { HelloPayload } from '../control/wire.js';

export interface ConnectOptions extends Omit<CoreOptions, 'open' | 'token' | 'device'> {
  /**
   * A paired device (from `pair()`): the client signs each challenge with its private key
   * (PKCS#8 PEM or a KeyObject); no token crosses the wire. Takes precedence over `token`.
   */
  device?: { id: string; privateKey: string | KeyObject };
  /** The gateway: https://desk:7070 (or http:// on loopback/private networks). Default PORTHOLE_URL. */
  url?: string;
  /** The gateway token. Default PORTHOLE_TOKEN. */
  token?: string;
  /** "sha256/<base64>" (public key) or "AA:BB:…" (certificate SHA-256). */
  pin?: string;
  /** Extra CA certificates (PEM) to trust, without a pin. */
  ca?: string | string[];
  /** Where to read PORTHOLE_URL / PORTHOLE_TOKEN. Default process.env. */
  env?: Record<string, string | undefined>;
  /** Connect through this Unix socket instead of the URL's host (an SSH forward); the URL still names the gateway. */
  socketPath?: string;
  /**
   * Dial this IP address instead of resolving the URL's host name, like curl --connect-to
   * (a relay reached by address, a name not in DNS yet); SNI, the Host header and the
   * certificate checks still use the URL's name.
   */
  connectAddress?: string;
}

export async function connect(options: ConnectOptions = {}): Promise<ControlClient> {
  const env = options.env ?? process.env;
  const rawUrl = options.url ?? env['PORTHOLE_URL'];
  if (!rawUrl) throw new ControlError('INVALID_ARGUMENT', 'no gateway URL: pass { url } or set PORTHOLE_URL');
  const url = controlUrl(rawUrl);
  const token = options.token ?? (env['PORTHOLE_TOKEN'] || undefined);
  const pin = options.pin !== undefined ? parsePin(options.pin) : undefined;
  if (pin && url.protocol !== 'wss:') throw new ControlError('TLS_PIN_INVALID', 'a pin needs an https:// URL');
  let device: CoreOptions['device'];
  if (options.device) {
    const key = typeof options.device.privateKey === 'string' ? createPrivateKey(options.device.privateKey) : options.device.privateKey;
    if (key.asymmetricKeyType !== 'ed25519') throw new ControlError('INVALID_ARGUMENT', 'device.privateKey must be the Ed25519 key pair() made');
    device = { id: options.device.id, sign: (message) => cryptoSign(null, message, key).toString('base64url') };
  }
  return createClient({ ...options, token, device, open: (events) => openNode(url, pin, options, events) });
}

function openNode(url: URL, pin: Pin | undefined, options: ConnectOptions, events: Parameters<CoreOptions['open']>[0]): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const wsOptions: Record<string, unknown> & { ca?: string | string[]; rejectUnauthorized?: boolean } = {
      handshakeTimeout: options.connectTimeoutMs ?? 15_000,
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      followRedirects: false,
    };
    if (options.socketPath) wsOptions['socketPath'] = options.socketPath;
    const address = options.connectAddress;
    if (address !== undefined) {
      const family = isIP(address);
      if (family === 0) throw new ControlError('INVALID_ARGUMENT', `connectAddress "${address}" is not an IP address`);
      wsOptions['lookup'] = (_host: string, o: { all?: boolean }, cb: (...args: unknown[]) => void) =>
        o?.all ? cb(null, [{ address, family }]) : cb(null, address, family);
    }
    if (options.ca !== undefined) wsOptions.ca = options.ca;
    let tls: TLSSocket | undefined;
    let pinVerified = false;
    if (url.protocol === 'wss:') {
      // Our own TLS connect: to keep the socket (for the exporter) and, with a pin, to check
      // it. The pin replaces chain and name checks, so Node's verification is off and the
      // pin is checked here, on every connection, before anything secret is sent. (Never
      // via checkServerIdentity: Node skips it when the chain fails, and a truthy return
      // means failure — the inversion DESIGN §8 warns about.)
      if (pin) wsOptions.rejectUnauthorized = false;
      wsOptions['createConnection'] = (opts: ConnectionOptions & { path?: string }) => {
        const host = opts.host ?? '';
        const socket = tlsConnect({
          ...opts,
          // opts.path is the request path ws sets; the socket's path is the Unix socket, if any.
          path: options.socketPath,
          servername: isIP(host) ? undefined : host,
          ...(pin ? { rejectUnauthorized: false } : {}),
        });
        tls = socket;
        if (pin) {
          socket.once('secureConnect', () => {
            // Recorded now: after the upgrade Node no longer hands out the peer certificate.
            pinVerified = pinMatches(socket, pin);
            if (!pinVerified) socket.destroy(pinMismatch(pin));
          });
        }
        return socket;
      };
    }
    const ws = new WebSocket(url, wsOptions);
    let opened = false;
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 16 && chunks.push(c));
      res.on('end', () => {
        let err = new ControlError('CONTROL_CONNECT_FAILED', `the gateway answered HTTP ${res.statusCode} instead of upgrading`, (res.statusCode ?? 0) >= 500);
        try {
          const e = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.error;
          if (typeof e?.code === 'string') {
            const retryAfter = typeof e.retryAfter === 'number' ? e.retryAfter : undefined;
            err = new ControlError(e.code, String(e.message ?? e.code), res.statusCode === 429 || (res.statusCode ?? 0) >= 500, retryAfter);
          }
        } catch {
          // not porthole's JSON: keep the generic error
        }
        reject(err);
      });
      res.on('error', () => reject(new ControlError('CONTROL_CONNECT_FAILED', `HTTP ${res.statusCode}`, true)));
    });
    ws.on('error', (err: Error) => {
      if (!opened) reject(err instanceof ControlError ? err : new ControlError('CONTROL_CONNECT_FAILED', `cannot reach ${url.host}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, true));
    });
    ws.on('ping', () => events.activity());
    ws.on('message', (data, isBinary) => {
      if (!isBinary) events.message(data.toString());
    });
    ws.on('close', (code, reason) => {
      if (opened) events.close(code, reason.toString());
      else reject(new ControlError('CONTROL_CONNECT_FAILED', `the connection to ${url.host} closed before it opened (${code})`, true));
    });
    ws.on('open', () => {
      // The pin was checked on this socket's TLS handshake; nothing secret has been sent yet.
      if (pin && !pinVerified) {
        ws.terminate();
        reject(pinMismatch(pin));
        return;
      }
      opened = true;
      resolve({
        seesPings: true,
        send: (text) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(text);
        },
        close: (code, reason) => {
          if (code === 4000) ws.terminate();
          else ws.close(code, reason);
        },
        exporter: () => (tls ? tls.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0)).toString('base64url') : undefined),
      });
    });
  });
}
