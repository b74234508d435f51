// `porthole status [--json]` and `porthole pair [--json] [--scope] [--expires] [--require-approval]`: ask the running
// gateway over its Unix socket (status also in remote mode: remote.ts).
import { qr } from './banner.js';
import { homePaths, type CliContext } from './context.js';
import { withGateway } from './remote.js';
import { callGateway } from './socket-client.js';
import { parseExpires } from '../pairing/service.js';

type TunnelSummary = { relay: string | null; state: { state: string; url?: string; lastError?: { code: string } } };

function describeTunnel(t: TunnelSummary | null | undefined): string {
  if (!t || t.state.state === 'stopped') return 'off';
  if (t.state.state === 'online') return `online  ${t.state.url}`;
  return `${t.state.state}${t.state.lastError ? ` (${t.state.lastError.code})` : ''} — relay ${t.relay ?? '-'}`;
}

type MethodView = { on: boolean | null; urls: string[]; health: string; detail: string };
type ConflictView = { rule: string; reason: string; fix: string };
type OverviewView = { methods: Record<string, MethodView>; conflicts: ConflictView[] };

const METHOD_LABELS: [key: string, label: string][] = [
  ['lan', 'local network'],
  ['ssh', 'SSH tunnel'],
  ['tailscale', 'Tailscale'],
  ['tunnel', 'public tunnel'],
  ['reverseProxy', 'reverse proxy'],
];

/** The remote-access overview as text: one block per method, then every conflict with its fix. */
export function renderOverview(o: OverviewView): string {
  const lines = ['remote access:'];
  for (const [key, label] of METHOD_LABELS) {
    const m = o.methods[key];
    if (!m) continue;
    const on = m.on === null ? 'n/a' : m.on ? 'ON ' : 'off';
    lines.push(`  ${label.padEnd(14)} ${on}  ${m.health.padEnd(8)} ${m.detail}`);
    for (const url of m.urls) lines.push(`  ${''.padEnd(14)}      ${url}`);
  }
  if (o.conflicts.length === 0) lines.push('conflicts: none');
  else {
    lines.push(`conflicts: ${o.conflicts.length}`);
    for (const c of o.conflicts) lines.push(`  ! ${c.reason}`, `    fix: ${c.fix}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function statusCommand(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  const s = await withGateway(ctx, (call) => call('GET', '/_porthole/api/status'));
  if (opts.json) {
    ctx.stdout.write(`${JSON.stringify(s)}\n`);
    return 0;
  }
  const auth = s['auth'] as { mode: string; loopbackExempt: boolean; tokenSource: string };
  const overview = s['exposure'] as OverviewView | undefined;
  ctx.stdout.write(
    [
      `gateway   ${s['url']}  (id ${s['id']}, porthole ${s['version']})`,
      `target    ${s['target'] ?? '-'}`,
      `auth      ${auth.mode}; loopback exemption ${auth.loopbackExempt ? 'on' : 'off'}; token from ${auth.tokenSource}`,
      `sessions  ${s['sessions']}   open streams ${s['openStreams']}`,
    ].join('\n') + '\n',
  );
  if (overview) ctx.stdout.write(renderOverview(overview));
  else ctx.stdout.write(`tunnel    ${describeTunnel(s['tunnel'] as TunnelSummary | null | undefined)}\n`);
  return 0;
}

export interface PairAnswerView {
  link: string;
  code: string;
  shortCode: string;
  scope: string;
  expiresAt: string;
  deviceExpiresAt: string | null;
  requireApproval: boolean;
}

/**
 * `porthole pair [--json] [--scope admin|read] [--expires 30d|never] [--require-approval]`:
 * a pairing code from the running gateway (docs/pairing.md) — the link (and its QR) carries
 * the 256-bit code, the short code is for typing by hand. Never the master token.
 */
export async function pairCommand(
  ctx: CliContext,
  opts: { json?: boolean; scope?: string; expires?: string; requireApproval?: boolean },
): Promise<number> {
  const paths = homePaths(ctx);
  const body: Record<string, unknown> = { scope: opts.scope ?? 'admin', requireApproval: opts.requireApproval === true };
  if (opts.expires !== undefined) {
    // Checked here too, so a typo is a usage error (exit 2) whether or not a gateway runs.
    parseExpires(opts.expires);
    body['expires'] = opts.expires;
  }
  const r = await callGateway<PairAnswerView>(paths, 'POST', '/_porthole/api/pair', body);
  if (opts.json) {
    const { link, code, shortCode, scope, expiresAt, deviceExpiresAt, requireApproval } = r;
    ctx.stdout.write(`${JSON.stringify({ link, code, shortCode, scope, expiresAt, deviceExpiresAt, requireApproval })}\n`);
    return 0;
  }
  ctx.stdout.write(
    `Pair a device (scope ${r.scope}; single use, the code expires ${r.expiresAt}):\n  ${r.link}\n${qr(r.link)}\n` +
      `Or type the short code: ${r.shortCode}\n` +
      `The device's access ${r.deviceExpiresAt ? `expires ${r.deviceExpiresAt}` : 'never expires'}` +
      `${r.requireApproval ? '; it waits for approval: porthole devices approve ID' : ''}.\n`,
  );
  return 0;
}
