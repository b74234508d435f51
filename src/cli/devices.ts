// `porthole devices list [--json] | revoke ID | approve ID`: the paired devices of the running
// gateway, over its Unix socket (class `cli`: full admin). docs/pairing.md.
import { homePaths, type CliContext } from './context.js';
import { callGateway } from './socket-client.js';

interface DeviceRow {
  id: string;
  name: string;
  kind: string;
  scope: string;
  status: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

const day = (iso: string | null, none: string) => (iso ? iso.slice(0, 16).replace('T', ' ') : none);

export function renderDevices(devices: DeviceRow[]): string {
  if (devices.length === 0) return 'No paired devices. Pair one with `porthole pair`.\n';
  const rows = [
    ['ID', 'NAME', 'KIND', 'SCOPE', 'STATUS', 'PAIRED', 'EXPIRES', 'LAST USED'],
    ...devices.map((d) => [d.id, d.name, d.kind, d.scope, d.status, day(d.createdAt, '-'), day(d.expiresAt, 'never'), day(d.lastUsedAt, 'never')]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

export async function devicesList(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  const r = await callGateway<{ devices: DeviceRow[] }>(homePaths(ctx), 'GET', '/_porthole/api/devices');
  ctx.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : renderDevices(r.devices));
  return 0;
}

export async function devicesRevoke(ctx: CliContext, id: string, opts: { json?: boolean } = {}): Promise<number> {
  const r = await callGateway<{ revoked: boolean; sessionsEnded: number; connectionsClosed: number }>(
    homePaths(ctx),
    'POST',
    `/_porthole/api/devices/${encodeURIComponent(id)}/revoke`,
  );
  if (opts.json) ctx.stdout.write(`${JSON.stringify(r)}\n`);
  else ctx.stderr.write(`Revoked ${id}: ${r.sessionsEnded} session(s) ended, ${r.connectionsClosed} connection(s) closed.\n`);
  return 0;
}

export async function devicesApprove(ctx: CliContext, id: string, opts: { json?: boolean } = {}): Promise<number> {
  const r = await callGateway<{ device: DeviceRow }>(homePaths(ctx), 'POST', `/_porthole/api/devices/${encodeURIComponent(id)}/approve`);
  if (opts.json) ctx.stdout.write(`${JSON.stringify(r)}\n`);
  else ctx.stderr.write(`Approved ${r.device.id} (${r.device.name}, scope ${r.device.scope}).\n`);
  return 0;
}
