// "HOST:PORT" as flags and config write it (IPv6 in brackets), parsed once for everyone.
import { PortholeError } from '../errors.js';

/**
 * Parses HOST:PORT. `what` names the input in the error. An empty host (":443") means every
 * address (0.0.0.0) when `listen` is set — a listener's spelling — and is an error otherwise.
 * Port 0 (ephemeral) is accepted only for listeners.
 */
export function parseHostPort(value: string, what: string, listen = false): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  const host = m ? m[1]!.replace(/^\[|\]$/g, '') : '';
  if (!m || port > 65535 || (port === 0 && !listen) || (host === '' && !listen)) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid ${what} "${value}": expected HOST:PORT`);
  }
  return { host: host || '0.0.0.0', port };
}
