// `porthole tailscale status | serve | funnel | reset`: act on the running gateway of this
// PORTHOLE_HOME over its Unix socket. `status` and `reset` also work with no gateway
// running: status shows what tailscale says, reset removes porthole's recorded mapping.
import { isPortholeError, PortholeError } from '../errors.js';
import { removeMapping, tailscaleOverview, type TailscaleOverview } from '../tailscale/index.js';
import { createTailscaleRunner } from '../tailscale/cli.js';
import { homePaths, type CliContext } from './context.js';
import { callGateway } from './socket-client.js';

type Overview = TailscaleOverview & { removed?: boolean; note?: string | null; gateway?: boolean };

function describe(o: Overview): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const lines = [
    `tailscale   ${o.installed ? (o.backendState ?? 'not answering') : 'not installed'}${o.dnsName ? `  ${o.dnsName}` : ''}`,
    `https       ${yes(o.httpsEnabled)}    funnel available  ${yes(o.funnelEnabled)}`,
    `porthole    ${o.mapped ? `${o.mode === 'funnel' ? 'funnel (public internet)' : 'serve (tailnet only)'}  ${o.url}` : 'not mapped'}`,
  ];
  if (o.mapped) lines.push(`target      ${o.target}${o.listener ? ` (${o.listener === 'unix' ? 'Unix socket' : 'loopback port'})` : ''}`);
  if (o.gateway === false) lines.push('gateway     not running');
  if (o.allowUsers.length) lines.push(`no token    ${o.allowUsers.join(', ')}`);
  for (const p of o.problems) lines.push(`problem     ${p.message} [${p.code}]`);
  return `${lines.join('\n')}\n`;
}

const runner = (ctx: CliContext) => createTailscaleRunner({ env: ctx.env as NodeJS.ProcessEnv });

export async function tailscaleCommand(ctx: CliContext, action: string, opts: { json?: boolean }): Promise<number> {
  const paths = homePaths(ctx);
  const print = (o: Overview) => ctx.stdout.write(opts.json ? `${JSON.stringify(o)}\n` : describe(o));
  if (action === 'status') {
    try {
      print({ ...(await callGateway<Overview>(paths, 'GET', '/_porthole/api/tailscale')), gateway: true });
    } catch (err) {
      if (!isPortholeError(err, 'GATEWAY_NOT_RUNNING')) throw err;
      print({ ...(await tailscaleOverview({ paths, run: runner(ctx) })), gateway: false });
    }
    return 0;
  }
  if (action === 'serve' || action === 'funnel') {
    const o = await callGateway<Overview>(paths, 'POST', `/_porthole/api/tailscale/${action}`, {});
    print({ ...o, gateway: true });
    if (!opts.json) {
      ctx.stderr.write(
        action === 'funnel'
          ? `Funnel on: ${o.url} is reachable from the internet; visitors need the token (or a one-time link).\n`
          : `Serve on: ${o.url} is reachable from your tailnet.\n`,
      );
    }
    return 0;
  }
  if (action === 'reset') {
    let o: Overview;
    try {
      o = { ...(await callGateway<Overview>(paths, 'POST', '/_porthole/api/tailscale/reset', {})), gateway: true };
    } catch (err) {
      if (!isPortholeError(err, 'GATEWAY_NOT_RUNNING')) throw err;
      const run = runner(ctx);
      const r = await removeMapping(run, paths);
      o = { ...(await tailscaleOverview({ paths, run })), ...r, gateway: false };
    }
    if (opts.json) ctx.stdout.write(`${JSON.stringify(o)}\n`);
    else ctx.stdout.write(o.removed ? "Removed porthole's Tailscale mapping (other routes left as they were).\n" : `Nothing removed: ${o.note}.\n`);
    return 0;
  }
  throw new PortholeError('INVALID_ARGUMENT', `unknown tailscale action ${action}`);
}
