// Talks to the running gateway of this PORTHOLE_HOME over its Unix socket.
import { request } from 'node:http';
import { PortholeError, type ErrorCode } from '../errors.js';
import { homeHolder } from '../secrets/home-lock.js';
import type { StatePaths } from '../secrets/paths.js';

/**
 * How long the CLI waits for the gateway's answer (a rotation may spend up to 5 s in the
 * keyring). A gateway that accepts and then never answers — stopped with SIGSTOP, wedged — is
 * GATEWAY_UNREACHABLE after this, not a CLI that hangs for ever.
 */
export const GATEWAY_ANSWER_MS = 30_000;

export async function callGateway<T = Record<string, unknown>>(
  paths: StatePaths,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = GATEWAY_ANSWER_MS,
): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        socketPath: paths.socketPath,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            reject(new PortholeError('INTERNAL', `unexpected answer from the gateway (HTTP ${res.statusCode})`));
            return;
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = (parsed as { error?: { code?: string; message?: string } }).error;
            reject(new PortholeError((e?.code ?? 'INTERNAL') as ErrorCode, e?.message ?? 'gateway error'));
            return;
          }
          resolve(parsed as T);
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(
        new PortholeError('GATEWAY_UNREACHABLE', `the gateway of ${paths.home} did not answer on ${paths.socketPath} within ${timeoutMs / 1000} s; is it stopped or overloaded?`),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof PortholeError) {
        reject(err);
        return;
      }
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        // No socket, but a live process holds the home (an embedding app whose socket could
        // not listen): acting on the state behind its back would split it from the gateway.
        const holder = homeHolder(paths);
        reject(
          holder !== undefined
            ? new PortholeError(
                'GATEWAY_UNREACHABLE',
                `a gateway (process ${holder}) holds ${paths.home} but does not answer on ${paths.socketPath}; ` +
                  'try again in a moment, or use that app\'s own controls',
              )
            : new PortholeError('GATEWAY_NOT_RUNNING', `no gateway is running for ${paths.home} (start one with \`porthole serve\`)`),
        );
      } else reject(err);
    });
    req.end(payload);
  });
}

/** True when a gateway answers on the socket. */
export async function gatewayRunning(paths: StatePaths): Promise<boolean> {
  try {
    await callGateway(paths, 'GET', '/_porthole/api/status');
    return true;
  } catch {
    return false;
  }
}
