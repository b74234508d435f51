// Pairing from the Node SDK (docs/pairing.md): make an Ed25519 key pair here, exchange a
// pairing code for a per-device credential, and keep the private key. The desk stores only
// the public half; the control plane then authenticates this device by signature, so no
// token needs to cross the wire again.
import { generateKeyPairSync } from 'node:crypto';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ControlError } from './errors.js';
import { type Pin, parsePin, pinMatches, pinMismatch } from './pin.js';

export interface PairOptions {
  /** The gateway (the origin of the pairing link). */
  url: string;
  /** The long code from the pairing link (`phc_…`), or… */
  code?: string;
  /** …the short code typed by hand (`XXXXX-XXXXX`). */
  shortCode?: string;
  /** How the desk lists this device. */
  name: string;
  /** Pin the gateway's certificate already (e.g. printed by `porthole serve --tls self-signed`). */
  pin?: string;
  /** Extra CA certificates (PEM) to trust. */
  ca?: string | string[];
  timeoutMs?: number;
}

export interface PairedDevice {
  device: { id: string; name: string; scope: 'admin' | 'read'; status: 'active' | 'pending'; createdAt: string; expiresAt: string | null };
  /** The device's bearer token (`phd_…`), for plain HTTP calls. Keep it secret. */
  token: string;
  /** The device's Ed25519 private key (PKCS#8 PEM): `connect({ device: { id, privateKey } })`. Keep it secret. */
  privateKey: string;
  /** The desk's pins: check later connections against them (a recycled or hijacked URL fails). */
  pins: { tls: { spki: string; cert: string } | null; tunnel: { spki: string } | null };
  /** URLs this device may use, best first. */
  connectUrls: string[];
}

/** A TLS connection whose certificate matched the pin, before a byte of the request is written. */
function pinnedSocket(url: URL, pin: Pin, ca: PairOptions['ca'], timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tlsConnect({
      host,
      port: Number(url.port || 443),
      servername: isIP(host) ? undefined : host,
      // The pin replaces the chain and name checks (a self-signed certificate is the point).
      rejectUnauthorized: false,
      ...(ca !== undefined ? { ca } : {}),
      minVersion: 'TLSv1.3',
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new ControlError('CONTROL_CONNECT_FAILED', 'timed out', true)));
    socket.once('secureConnect', () => {
      socket.setTimeout(0);
      if (pinMatches(socket, pin)) return resolve(socket);
      socket.destroy();
      reject(pinMismatch(pin));
    });
    socket.once('error', (err) => reject(err instanceof ControlError ? err : new ControlError('CONTROL_CONNECT_FAILED', `cannot reach ${url.host}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, true)));
  });
}

/** Exchanges a pairing code for a device credential bound to a key pair made here. */
export async function pair(options: PairOptions): Promise<PairedDevice> {
  if ((options.code === undefined) === (options.shortCode === undefined)) {
    throw new ControlError('INVALID_ARGUMENT', 'pass exactly one of code and shortCode');
  }
  const url = new URL('/_porthole/api/pair/exchange', options.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ControlError('INVALID_ARGUMENT', `not an http(s) URL: ${options.url}`);
  const pin = options.pin !== undefined ? parsePin(options.pin) : undefined;
  if (pin && url.protocol !== 'https:') throw new ControlError('TLS_PIN_INVALID', 'a pin needs an https:// URL');
  const timeoutMs = options.timeoutMs ?? 15_000;
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const body = JSON.stringify({
    ...(options.code !== undefined ? { code: options.code } : { shortCode: options.shortCode }),
    name: options.name,
    kind: 'sdk',
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64url'),
  });
  const pinned = pin ? await pinnedSocket(url, pin, options.ca, timeoutMs) : undefined;
  const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const send = url.protocol === 'https:' && !pinned ? httpsRequest : httpRequest;
    const req = send(
      {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: url.pathname,
        servername: isIP(url.hostname.replace(/^\[|\]$/g, '')) ? undefined : url.hostname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
        ...(pinned ? { createConnection: () => pinned } : {}),
        ...(options.ca !== undefined && !pinned ? { ca: options.ca } : {}),
      },
      (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < 256 * 1024) text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new ControlError('CONTROL_CONNECT_FAILED', 'the pairing request timed out', true)));
    req.on('error', (err) => reject(err instanceof ControlError ? err : new ControlError('CONTROL_CONNECT_FAILED', `cannot reach ${url.host}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, true)));
    req.end(body);
  });
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    throw new ControlError('CONTROL_CONNECT_FAILED', `the gateway answered HTTP ${answer.status} without JSON: is ${url.origin} a porthole gateway?`);
  }
  if (answer.status !== 201) {
    const e = json['error'] as { code?: string; message?: string; retryAfter?: number } | undefined;
    throw new ControlError(e?.code ?? 'CONTROL_CONNECT_FAILED', e?.message ?? `HTTP ${answer.status}`, answer.status === 429, e?.retryAfter);
  }
  return {
    device: json['device'] as PairedDevice['device'],
    token: json['token'] as string,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    pins: json['pins'] as PairedDevice['pins'],
    connectUrls: json['connectUrls'] as string[],
  };
}
