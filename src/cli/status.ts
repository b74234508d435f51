// `porthole status [--json]` and `porthole pair [--json] [--scope]`: ask the running
// gateway over its Unix socket.
import { qr } from './banner.js';
import { homePaths, type CliContext } from './context.js';
import { callGateway } from './socket-client.js';

type TunnelSummary = { relay: string | null; state: { state: string; url?: string; lastError?: { code: string } } };

function describeTunnel(t: TunnelSummary | null | undefined): string {
  if (!t || t.state.state === 'stopped') return 'off';
  if (t.state.state === 'online') return `online  ${t.state.url}`;
  return `${t.state.state}${t.state.lastError ? ` (${t.state.lastError.code})` : ''} — relay ${t.relay ?? '-'}`;
}

export async function statusCommand(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  const s = await callGateway(homePaths(ctx), 'GET', '/_porthole/api/status');
  if (opts.json) {
    ctx.stdout.write(`${JSON.stringify(s)}\n`);
    return 0;
  }
  const auth = s['auth'] as { mode: string; loopbackExempt: boolean; tokenSource: string };
  ctx.stdout.write(
    [
      `gateway   ${s['url']}  (id ${s['id']}, porthole ${s['version']})`,
      `target    ${s['target'] ?? '-'}`,
      `remote    ${s['remoteAccess'] ? `ON  ${s['connectUrl'] ?? ''}` : 'off (loopback only)'}`,
      `auth      ${auth.mode}; loopback exemption ${auth.loopbackExempt ? 'on' : 'off'}; token from ${auth.tokenSource}`,
      `sessions  ${s['sessions']}   open streams ${s['openStreams']}`,
      `tunnel    ${describeTunnel(s['tunnel'] as TunnelSummary | null | undefined)}`,
    ].join('\n') + '\n',
  );
  return 0;
}

export async function pairCommand(ctx: CliContext, opts: { json?: boolean; scope?: string }): Promise<number> {
  const paths = homePaths(ctx);
  const status = await callGateway(paths, 'GET', '/_porthole/api/status');
  const r = await callGateway<{ code: string; scope: string; expiresAt: string }>(paths, 'POST', '/_porthole/api/codes', {
    scope: opts.scope ?? 'admin',
  });
  const base = (status['connectUrl'] as string | null) ?? (status['url'] as string);
  const link = `${base}/?code=${r.code}`;
  if (opts.json) {
    ctx.stdout.write(`${JSON.stringify({ link, code: r.code, scope: r.scope, expiresAt: r.expiresAt })}\n`);
    return 0;
  }
  ctx.stdout.write(`One-time link (single use, expires ${r.expiresAt}):\n  ${link}\n${qr(link)}\n`);
  return 0;
}
