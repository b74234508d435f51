// `porthole call METHOD [JSON]`: one request over the control plane; prints the result as
// JSON on stdout, or the error code with a non-zero exit. Where: remote mode's settings
// (PORTHOLE_URL + PORTHOLE_TOKEN, or [remote] url/token_file, over http(s) or an SSH forward,
// pinned by --pin or [remote] tls_pin: src/cli/remote.ts), else the local gateway (its URL
// and TLS pin from the Unix socket, the token from the store).
import { connect, ControlError } from '../client/index.js';
import { PortholeError } from '../errors.js';
import { openSecretStore, resolveToken } from '../secrets/store.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import { remoteSettings, withRemoteRoute } from './remote.js';
import { callGateway } from './socket-client.js';

export interface CallFlags {
  /** Pin of the gateway's TLS certificate: "sha256/<base64>" or "AA:BB:…". */
  pin?: string;
  /** Seconds to wait for the answer. Default 30. */
  timeout?: string;
}

interface Target {
  url: string;
  token: string;
  pin: string | undefined;
  /** The SSH forward's local end, for transport = "ssh". */
  socketPath?: string;
}

/**
 * Runs `fn` with where to connect: remote mode's route (straight, or through an SSH forward
 * opened for the call and closed after it; pin: --pin, else remote.tls_pin), else the local
 * gateway (its URL and TLS pin from the Unix socket, the token from the store).
 */
async function withTarget<T>(ctx: CliContext, flags: CallFlags, fn: (target: Target) => Promise<T>): Promise<T> {
  const paths = homePaths(ctx);
  const remote = remoteSettings(ctx.env, loadCliConfig(ctx, paths, undefined, {}).config);
  if (remote) {
    return withRemoteRoute(ctx, remote, (route) => fn({ url: route.url.toString(), token: route.token, pin: route.pin?.text, socketPath: route.socketPath }), flags.pin);
  }
  const status = await callGateway<{ url?: string; tls?: { pin?: string } | null }>(paths, 'GET', '/_porthole/api/status');
  if (typeof status.url !== 'string') throw new PortholeError('GATEWAY_NOT_RUNNING', 'the local gateway did not report its URL');
  const token = resolveToken({ paths, store: openSecretStore(paths), env: ctx.env, create: false }).token;
  return fn({ url: status.url, token, pin: flags.pin ?? status.tls?.pin ?? undefined });
}

export async function callCommand(ctx: CliContext, method: string, json: string | undefined, flags: CallFlags): Promise<number> {
  let params: unknown;
  if (json !== undefined) {
    try {
      params = JSON.parse(json);
    } catch {
      throw new PortholeError('INVALID_ARGUMENT', `the parameters are not valid JSON: ${json.length > 60 ? `${json.slice(0, 60)}…` : json}`);
    }
  }
  const timeoutMs = flags.timeout !== undefined ? Number(flags.timeout) * 1000 : 30_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new PortholeError('INVALID_ARGUMENT', `--timeout ${flags.timeout}: a positive number of seconds`);
  try {
    return await withTarget(ctx, flags, async (target) => {
      const client = await connect({
        url: target.url,
        token: target.token,
        pin: target.pin,
        socketPath: target.socketPath,
        env: {},
        reconnect: false,
        connectTimeoutMs: timeoutMs,
        deviceName: 'porthole call',
      });
      try {
        const result = await client.request(method, params, { timeoutMs });
        ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return 0;
      } finally {
        await client.close();
      }
    });
  } catch (err) {
    if (!(err instanceof ControlError)) throw err;
    ctx.stderr.write(`porthole: ${err.message} [${err.code}]\n`);
    if (err.code === 'CONTROL_CONNECT_FAILED') return 3;
    if (err.code === 'TLS_PIN_INVALID' || err.code === 'CONTROL_INSECURE_URL' || err.code === 'INVALID_ARGUMENT') return 2;
    return 1;
  }
}
