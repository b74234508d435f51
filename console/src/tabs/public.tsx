// Public internet: porthole's relay tunnel. A security notice and consent before the first
// start; start/stop; the public URL as it provisions (live tunnel.state events); release the
// URL; auto-start; the registration secret (only ever shown masked).
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLiveEvents } from '../live';
import type { TunnelStatus } from '../types';
import { CopyField, ErrorLine, Notice, useAction, useLoad } from '../ui';
import { AdminOnly, SettingField, type TabProps, useSettings } from './common';

function stateText(t: TunnelStatus): string {
  const s = t.state;
  if (s.state === 'online') return `Online (${s.mode ?? 'passthrough'} mode)`;
  if (s.state === 'stopped') return 'Stopped';
  const why = s.lastError ? ` — ${s.lastError.message} [${s.lastError.code}]` : '';
  if (s.state === 'connecting') return `Connecting to ${t.relay ?? 'the relay'} (attempt ${s.attempt ?? 1})${why}`;
  return `Waiting to retry${s.retryInMs ? ` in ${Math.ceil(s.retryInMs / 1000)} s` : ''}${why}`;
}

function certificateText(c: NonNullable<TunnelStatus['certificate']>): string {
  const until = c.notAfter ? `, valid until ${new Date(c.notAfter).toLocaleDateString()}` : '';
  if (c.source === 'files') return `from files${until}`;
  const state = { waiting: 'waiting for the tunnel name', obtaining: 'being obtained', valid: 'valid', failed: 'failed, retrying' }[c.state ?? 'waiting'];
  return `ACME: ${state}${until}${c.error ? ` — ${c.error}` : ''}`;
}

export function PublicTab({ identity }: TabProps) {
  const admin = identity.scope === 'admin';
  const tunnel = useLoad(() => api<TunnelStatus>('/tunnel'));
  // tunnel.state carries the status itself; re-reading keeps the secret's masked form too.
  useLiveEvents(['tunnel.state'], tunnel.reload);
  const settings = useSettings(admin);
  const [consent, setConsent] = useState(false);
  const [secret, setSecret] = useState('');
  const [released, setReleased] = useState<string | null | undefined>(undefined);
  const act = useAction(async (what: 'start' | 'stop' | 'release') => {
    const r = await api<{ released?: string | null }>(`/tunnel/${what}`, { method: 'POST', body: what === 'start' ? { acceptRisk: consent } : {} });
    if (what === 'release') setReleased(r.released ?? null);
    tunnel.reload();
  });
  const saveSecret = useAction(async () => {
    await api('/tunnel/secret', { method: 'POST', body: { secret } });
    setSecret('');
    tunnel.reload();
  });
  const t = tunnel.data;
  const running = t !== undefined && t.state.state !== 'stopped';
  const provisioning = t?.state.state === 'connecting' || t?.state.state === 'waiting';
  return (
    <div>
      <Notice kind="warn">
        <strong>Security notice.</strong> The public tunnel makes this desk reachable from the internet at a URL on the relay. Anyone who
        learns the URL can reach the gateway; every request still needs the token or a paired device. In passthrough mode the relay sees only
        encrypted traffic, visitor addresses and the desk's name. Stop it when you do not need it.
      </Notice>
      {tunnel.error !== undefined && (tunnel.error as { code?: string }).code === 'NOT_FOUND' ? (
        <p>This gateway runs no tunnel (start it with <code>porthole serve --tunnel --relay HOST:PORT</code>, or set <code>tunnel.relay</code> below).</p>
      ) : (
        <ErrorLine error={tunnel.error} />
      )}
      {t && (
        <section class="card" aria-labelledby="tunnel-state">
          <h3 id="tunnel-state">Tunnel</h3>
          <p data-testid="tunnel-state" role="status">
            {stateText(t)}
          </p>
          {provisioning && <progress aria-label="Provisioning the public URL" />}
          {t.state.state === 'online' && t.state.url && <CopyField label="Public URL" value={t.state.url} testId="tunnel-url" />}
          <p class="hint">Relay: {t.relay ?? 'not set'}</p>
          {t.certificate && (
            <p class="hint" data-testid="tunnel-cert">
              Certificate: {certificateText(t.certificate)}
            </p>
          )}
          {admin && (
            <>
              {!t.consent && !running && (
                <label class="check">
                  <input type="checkbox" checked={consent} onChange={(e) => setConsent(e.currentTarget.checked)} />I have read the notice and
                  want this desk on the public internet.
                </label>
              )}
              <div class="buttons">
                {running ? (
                  <button type="button" disabled={act.busy} onClick={() => act.run('stop')}>
                    Stop
                  </button>
                ) : (
                  <button type="button" disabled={act.busy || (!t.consent && !consent)} onClick={() => act.run('start')}>
                    Start
                  </button>
                )}
                <button
                  type="button"
                  class="danger"
                  disabled={act.busy}
                  onClick={() => {
                    if (confirm('Release the public URL? The relay holds the name back; this desk gets a new one at the next start.')) void act.run('release');
                  }}
                >
                  Release URL
                </button>
              </div>
              {released !== undefined && <Notice kind="ok">{released ? `Released ${released}.` : 'There was no name to release.'}</Notice>}
              <ErrorLine error={act.error} />
            </>
          )}
        </section>
      )}
      {admin ? (
        <section class="card" aria-labelledby="tunnel-settings">
          <h3 id="tunnel-settings">Settings</h3>
          <SettingField settings={settings.data} name="tunnel.auto_start" label="Start the tunnel when the gateway starts" kind="checkbox" onSaved={settings.reload} />
          <SettingField settings={settings.data} name="tunnel.relay" label="Relay (HOST:PORT)" placeholder="relay.example.com:443" onSaved={settings.reload} />
          <SettingField settings={settings.data} name="tunnel.subdomain" label="Requested name" placeholder="random" onSaved={settings.reload} />
          <form
            class="setting"
            onSubmit={(e) => {
              e.preventDefault();
              void saveSecret.run();
            }}
          >
            <p>
              Registration secret:{' '}
              <span data-testid="secret-masked">
                {t?.secret ? (t.secret.set ? `${t.secret.masked ?? 'set'} (${t.secret.source})` : 'not set (dev default: loopback relays only)') : '—'}
              </span>
            </p>
            <label for="tunnel-secret">New registration secret</label>
            <div class="copy-row">
              <input id="tunnel-secret" type="password" autocomplete="off" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
              <button type="submit" disabled={saveSecret.busy || secret === ''}>
                Save secret
              </button>
            </div>
            <p class="hint">Stored in the desk's secret store; never shown again.</p>
            <ErrorLine error={saveSecret.error} />
          </form>
        </section>
      ) : (
        <AdminOnly what="Changing the tunnel" />
      )}
    </div>
  );
}
