// `porthole tunnel start [--accept-risk] | stop | status | release | secret set`: act on
// the running gateway of this PORTHOLE_HOME (`secret set` too when one runs; else the store directly).
import { openSecretStore } from '../secrets/store.js';
import { SECRET_STORE_KEY } from '../tunnel/manager.js';
import { checkRegistrationSecret } from '../gateway/api/tunnel-secret.js';
import { isPortholeError, PortholeError } from '../errors.js';
import { callGateway } from './socket-client.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import { remoteSettings, withGateway } from './remote.js';

type Status = {
  enabled: boolean;
  relay: string | null;
  consent: boolean;
  state: Record<string, unknown> & { state: string };
  certificate?: { source: string; state?: string; notAfter?: string; error?: string };
};

function describe(s: Status): string {
  const st = s.state;
  const lines = [`tunnel    ${st.state}${st['url'] ? `  ${st['url']}` : ''}`, `relay     ${s.relay ?? '-'}`, `consent   ${s.consent ? 'given' : 'not given'}`];
  const err = st['lastError'] as { code: string; message: string } | undefined;
  if (err) lines.push(`last error ${err.code}: ${err.message}`);
  if (st.state === 'waiting') lines.push(`retry in  ${Math.round(Number(st['retryInMs']) / 100) / 10} s`);
  const c = s.certificate;
  if (c) {
    const how = c.source === 'files' ? 'from files' : `ACME, ${c.state ?? '?'}`;
    lines.push(`cert      ${how}${c.notAfter ? `, valid until ${c.notAfter}` : ''}`);
    if (c.error) lines.push(`cert error ${c.error}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function tunnelCommand(ctx: CliContext, action: string, opts: { acceptRisk?: boolean; json?: boolean }): Promise<number> {
  // The local gateway over its socket, or a remote one (remote.ts: the same routes over HTTP).
  return withGateway(ctx, async (call) => {
    let s: Status;
    if (action === 'status') s = await call<Status>('GET', '/_porthole/api/tunnel');
    else if (action === 'start') s = await call<Status>('POST', '/_porthole/api/tunnel/start', { acceptRisk: Boolean(opts.acceptRisk) });
    else if (action === 'stop') s = await call<Status>('POST', '/_porthole/api/tunnel/stop', {});
    else if (action === 'release') {
      const r = await call<{ released: string | null }>('POST', '/_porthole/api/tunnel/release', {});
      ctx.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : r.released ? `Released ${r.released}: it is held back on the relay before anyone else may take it.\n` : 'This desk held no name on the relay.\n');
      return 0;
    } else throw new PortholeError('INVALID_ARGUMENT', `unknown tunnel action ${action}`);
    ctx.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : describe(s));
    return 0;
  });
}

/** Reads the secret from stdin (never argv: other local users can read the process list). */
export async function tunnelSecretSet(ctx: CliContext, stdin: NodeJS.ReadableStream): Promise<number> {
  const paths = homePaths(ctx);
  // The secret belongs in the desk's store: in remote mode this machine is not the desk.
  if (remoteSettings(ctx.env, loadCliConfig(ctx, paths, undefined, {}).config)) {
    throw new PortholeError('INVALID_ARGUMENT', 'remote mode is configured here ([remote] or PORTHOLE_URL): run `porthole tunnel secret set` on the desk itself');
  }
  let text = '';
  for await (const chunk of stdin) text += chunk.toString();
  // The same rule as POST /_porthole/api/tunnel/secret (the console).
  const secret = checkRegistrationSecret(text.replace(/\r?\n$/, ''));
  // A running gateway stores it itself (over its 0700 socket), so its status shows the new
  // secret without re-reading the keyring; with none running (or one without a tunnel), here.
  try {
    const r = (await callGateway(paths, 'POST', '/_porthole/api/tunnel/secret', { secret })) as { secret?: { source?: string } };
    ctx.stderr.write(
      r.secret?.source === 'env'
        ? 'Registration secret stored by the running gateway, but PORTHOLE_TUNNEL_REGISTRATION_SECRET is set in its environment and wins: the tunnel keeps using that one.\n'
        : 'Registration secret stored by the running gateway. The tunnel uses it from its next connection attempt (at once if it is waiting to retry).\n',
    );
    return 0;
  } catch (err) {
    if (!isPortholeError(err, 'GATEWAY_NOT_RUNNING') && !isPortholeError(err, 'NOT_FOUND')) throw err;
  }
  const store = openSecretStore(paths);
  store.set(SECRET_STORE_KEY, secret);
  ctx.stderr.write(`Registration secret stored (${store.describe()}). It is used the next time the tunnel connects.\n`);
  return 0;
}
