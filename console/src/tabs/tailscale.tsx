// Tailscale: Serve (tailnet only) or Funnel (public internet) in front of the gateway, as
// `porthole tailscale serve|funnel|reset` do (the same handlers, docs/tailscale.md).
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLiveEvents } from '../live';
import { CopyField, ErrorLine, Notice, useAction, useLoad } from '../ui';
import { AdminOnly, SettingField, type TabProps, useSettings } from './common';

interface TailscaleOverview {
  installed: boolean;
  running: boolean;
  loggedIn: boolean;
  backendState: string | null;
  dnsName: string | null;
  owner: string | null;
  httpsEnabled: boolean;
  funnelEnabled: boolean;
  mode: 'off' | 'serve' | 'funnel';
  mapped: boolean;
  url: string | null;
  allowUsers: string[];
  problems: { code: string; message: string }[];
}

export function TailscaleTab({ identity }: TabProps) {
  const admin = identity.scope === 'admin';
  const ts = useLoad(() => api<TailscaleOverview>('/tailscale'));
  useLiveEvents(['exposure.changed'], ts.reload);
  const settings = useSettings(admin);
  const [funnelOk, setFunnelOk] = useState(false);
  const act = useAction(async (what: 'serve' | 'funnel' | 'reset') => {
    await api(`/tailscale/${what}`, { method: 'POST', body: {} });
    ts.reload();
  });
  const o = ts.data;
  return (
    <div>
      <p>
        Tailscale gives this desk a private HTTPS name on your tailnet. <strong>Serve</strong> reaches it from your own devices only;{' '}
        <strong>Funnel</strong> publishes it on the internet (every request still needs a credential).
      </p>
      <ErrorLine error={ts.error} />
      {o && (
        <dl class="facts" data-testid="tailscale-facts">
          <dt>Tailscale</dt>
          <dd>{!o.installed ? 'not installed' : o.running ? `running (${o.backendState})` : `not running (${o.backendState ?? 'unknown'})`}</dd>
          <dt>Name</dt>
          <dd>{o.dnsName ?? '—'}</dd>
          <dt>Mode</dt>
          <dd>{o.mode === 'off' ? 'off' : o.mode === 'serve' ? 'Serve (tailnet only)' : 'Funnel (public internet)'}</dd>
          <dt>HTTPS certificates</dt>
          <dd>{o.httpsEnabled ? 'enabled' : 'not enabled in the tailnet'}</dd>
          <dt>Who may sign in by tailnet identity</dt>
          <dd>{o.allowUsers.length ? o.allowUsers.join(', ') : (o.owner ?? '—')}</dd>
        </dl>
      )}
      {o?.url && <CopyField label="Tailnet URL" value={o.url} />}
      {o?.problems.map((p) => (
        <Notice key={p.code} kind="warn">
          {p.message} [{p.code}]
        </Notice>
      ))}
      {admin ? (
        <section class="card" aria-labelledby="ts-actions">
          <h3 id="ts-actions">Change</h3>
          <div class="buttons">
            <button type="button" disabled={act.busy} onClick={() => act.run('serve')}>
              Serve on the tailnet
            </button>
            <button type="button" disabled={act.busy} onClick={() => act.run('reset')}>
              Turn off
            </button>
          </div>
          <label class="check">
            <input type="checkbox" checked={funnelOk} onChange={(e) => setFunnelOk(e.currentTarget.checked)} />I understand Funnel makes this desk
            reachable from the whole internet.
          </label>
          <button type="button" class="danger" disabled={act.busy || !funnelOk} onClick={() => act.run('funnel')}>
            Publish with Funnel
          </button>
          <ErrorLine error={act.error} />
          <SettingField
            settings={settings.data}
            name="tailscale.mode"
            label="Mode at start"
            kind="select"
            options={['off', 'serve', 'funnel']}
            onSaved={settings.reload}
          />
        </section>
      ) : (
        <AdminOnly what="Changing Tailscale" />
      )}
    </div>
  );
}
