// `porthole/client` in the browser: the same API over the global WebSocket. The browser
// does TLS itself (no pins: the page's origin is already the trust decision) and cannot
// read a TLS exporter, so over a gateway's own TLS it proves the token itself; without a
// token it relies on the console's session cookie (sent with the upgrade).
import { type ControlClient, type CoreOptions, createClient, type Transport } from './core.js';
import { ControlError } from './errors.js';
import { controlUrl } from './url.js';

export { ControlError } from './errors.js';
export type { ClientState, ControlClient } from './core.js';
export type { HelloPayload } from '../control/wire.js';

export interface ConnectOptions extends Omit<CoreOptions, 'open'> {
  /** The gateway URL. Default: this page's origin. */
  url?: string;
}

interface BrowserSocket {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: (() => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: (() => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
}

export async function connect(options: ConnectOptions = {}): Promise<ControlClient> {
  const g = globalThis as unknown as { WebSocket?: new (url: string) => BrowserSocket; location?: { origin: string } };
  const Ctor = g.WebSocket;
  if (!Ctor) throw new ControlError('INVALID_ARGUMENT', 'no WebSocket in this environment: in Node, import "porthole/client" (its Node entry)');
  const raw = options.url ?? g.location?.origin;
  if (!raw) throw new ControlError('INVALID_ARGUMENT', 'no gateway URL: pass { url }');
  const url = controlUrl(raw).toString();
  return createClient({
    ...options,
    open: (events) =>
      new Promise<Transport>((resolve, reject) => {
        const ws = new Ctor(url);
        let opened = false;
        ws.onopen = () => {
          opened = true;
          resolve({
            seesPings: false,
            send: (text) => {
              if (ws.readyState === 1) ws.send(text);
            },
            close: (code, reason) => ws.close(code === 4000 ? 1000 : code, reason),
            exporter: () => undefined,
          });
        };
        ws.onerror = () => {
          if (!opened) reject(new ControlError('CONTROL_CONNECT_FAILED', `cannot open ${url}`, true));
        };
        ws.onmessage = (e) => {
          if (typeof e.data === 'string') events.message(e.data);
        };
        ws.onclose = (e) => {
          if (!opened) reject(new ControlError('CONTROL_CONNECT_FAILED', `cannot open ${url} (${e.code})`, true));
          else events.close(e.code, e.reason);
        };
      }),
  });
}
