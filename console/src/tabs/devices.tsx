// Devices: pair a new one (QR code with the pairing link, the short code to type), the list
// of paired devices with approve and revoke. devices.changed and pair.completed events keep
// it current; revoking ends the device's sessions and connections at once.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { useLiveEvents } from '../live';
import { QrCode } from '../qr';
import type { Device, PairAnswer } from '../types';
import { CopyField, ErrorLine, formatTime, Notice, useAction, useLoad } from '../ui';
import { AdminOnly, type TabProps } from './common';

export function formatShortCode(code: string): string {
  const c = code.replace(/-/g, '').toUpperCase();
  return c.length === 10 ? `${c.slice(0, 5)}-${c.slice(5)}` : code;
}

function useCountdown(until: string | undefined): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!until) return;
    // A clock for the display only; nothing is fetched.
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [until]);
  return until ? Math.max(0, Math.round((Date.parse(until) - now) / 1000)) : 0;
}

function PairPanel({ pairing, onClose }: { pairing: PairAnswer; onClose: () => void }) {
  const left = useCountdown(pairing.expiresAt);
  return (
    <section class="card pair" aria-labelledby="pair-title" data-testid="pair-panel">
      <h3 id="pair-title">Scan with the new device</h3>
      {left > 0 ? (
        <>
          <QrCode text={pairing.link} label="QR code of the pairing link" />
          <p>
            Or open <strong>/_porthole/ui/</strong> on the device and type the code:
          </p>
          <p class="short-code" data-testid="pair-short-code">
            {formatShortCode(pairing.shortCode)}
          </p>
          <CopyField label="Pairing link" value={pairing.link} testId="pair-link" />
          <p class="hint" aria-live="off">
            Scope: {pairing.scope}. Works once; expires in {Math.floor(left / 60)}:{String(left % 60).padStart(2, '0')}.
            {pairing.deviceExpiresAt ? ` The device's access ends ${formatTime(pairing.deviceExpiresAt)}.` : ''}
          </p>
        </>
      ) : (
        <Notice kind="warn">This code has expired. Make a new one.</Notice>
      )}
      <button type="button" onClick={onClose}>
        Close
      </button>
    </section>
  );
}

export function DevicesTab({ identity }: TabProps) {
  const admin = identity.scope === 'admin';
  const list = useLoad(() => (admin ? api<{ devices: Device[] }>('/devices').then((r) => r.devices) : Promise.resolve([])), [admin]);
  const [pairing, setPairing] = useState<PairAnswer>();
  const [scope, setScope] = useState<'admin' | 'read'>('admin');
  const [expires, setExpires] = useState('');
  const [approval, setApproval] = useState(false);
  const [notice, setNotice] = useState<string>();

  useLiveEvents(['devices.changed', 'pair.completed'], (payload, event) => {
    const device = (payload as { device?: Device } | undefined)?.device;
    const reason = (payload as { reason?: string } | undefined)?.reason;
    if (event === 'pair.completed') setPairing(undefined);
    if (device && (event === 'pair.completed' || reason === 'paired')) {
      setNotice(`New device paired: “${device.name}” (${device.scope}${device.status === 'pending' ? ', waiting for approval' : ''}).`);
    }
    list.reload();
  });

  const pair = useAction(async () => {
    const body: Record<string, unknown> = { scope, requireApproval: approval };
    if (expires) body['expires'] = expires;
    setNotice(undefined);
    setPairing(await api<PairAnswer>('/pair', { method: 'POST', body }));
  });
  const act = useAction(async (id: string, what: 'revoke' | 'approve') => {
    await api(`/devices/${encodeURIComponent(id)}/${what}`, { method: 'POST', body: {} });
    list.reload();
  });

  if (!admin) return <AdminOnly what="Managing devices" />;
  const devices = list.data ?? [];
  return (
    <div>
      {notice && <Notice kind="ok">{notice}</Notice>}
      {pairing ? (
        <PairPanel pairing={pairing} onClose={() => setPairing(undefined)} />
      ) : (
        <form
          class="card"
          aria-labelledby="new-device"
          onSubmit={(e) => {
            e.preventDefault();
            void pair.run();
          }}
        >
          <h3 id="new-device">Pair a device</h3>
          <p class="hint">The device gets its own credential; the desk's token never leaves this machine.</p>
          <div class="grid2">
            <div>
              <label for="pair-scope">Access</label>
              <select id="pair-scope" value={scope} onChange={(e) => setScope(e.currentTarget.value as 'admin' | 'read')}>
                <option value="admin">Full (admin)</option>
                <option value="read">Read-only</option>
              </select>
            </div>
            <div>
              <label for="pair-expires">Access ends</label>
              <select id="pair-expires" value={expires} onChange={(e) => setExpires(e.currentTarget.value)}>
                <option value="">Default ({scope === 'admin' ? '90 days' : 'a year'})</option>
                <option value="1d">After 1 day</option>
                <option value="7d">After 7 days</option>
                <option value="30d">After 30 days</option>
                <option value="365d">After a year</option>
                <option value="never">Never</option>
              </select>
            </div>
          </div>
          <label class="check">
            <input type="checkbox" checked={approval} onChange={(e) => setApproval(e.currentTarget.checked)} />
            Keep it pending until I approve it here
          </label>
          <button type="submit" disabled={pair.busy} data-testid="pair-create">
            Show pairing QR code
          </button>
          <ErrorLine error={pair.error} />
        </form>
      )}
      <ErrorLine error={list.error ?? act.error} />
      <table class="devices" data-testid="devices-table">
        <caption>Paired devices</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Access</th>
            <th scope="col">Status</th>
            <th scope="col">Paired</th>
            <th scope="col">Last used</th>
            <th scope="col">Ends</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {devices.length === 0 && (
            <tr>
              <td colSpan={7}>No paired devices yet.</td>
            </tr>
          )}
          {devices.map((d) => (
            <tr key={d.id} data-testid={`device-${d.id}`}>
              <th scope="row" data-label="Name">
                {d.name}
                {d.kind ? <span class="hint"> ({d.kind})</span> : null}
              </th>
              <td data-label="Access">{d.scope}</td>
              <td data-label="Status">{d.status}</td>
              <td data-label="Paired">{formatTime(d.createdAt)}</td>
              <td data-label="Last used">{formatTime(d.lastUsedAt)}</td>
              <td data-label="Ends">{d.expiresAt ? formatTime(d.expiresAt) : 'never'}</td>
              <td class="actions">
                {d.status === 'pending' && (
                  <button type="button" disabled={act.busy} onClick={() => act.run(d.id, 'approve')} aria-label={`Approve ${d.name}`}>
                    Approve
                  </button>
                )}
                <button
                  type="button"
                  class="danger"
                  disabled={act.busy}
                  aria-label={`Revoke ${d.name}`}
                  onClick={() => {
                    if (confirm(`Revoke “${d.name}”? It is signed out at once and cannot reconnect.`)) void act.run(d.id, 'revoke');
                  }}
                >
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
