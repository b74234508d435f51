// Local network: the addresses other devices on the LAN can use, and the bind setting.
import { api } from '../api';
import { CopyField, ErrorLine, Notice, useLoad } from '../ui';
import { methodOf, SettingField, type TabProps, useSettings, useStatus } from './common';

interface Lan {
  bind: string;
  port: number;
  addresses: { address: string; family?: number; interface?: string; url?: string }[];
}

export function LanTab({ identity }: TabProps) {
  const admin = identity.scope === 'admin';
  const status = useStatus();
  const lan = useLoad(() => api<Lan>('/lan'));
  const settings = useSettings(admin);
  const m = methodOf(status.data?.exposure, 'lan');
  return (
    <div>
      <ErrorLine error={status.error ?? lan.error} />
      {m && <p data-testid="lan-detail">{m.detail}</p>}
      {m && m.urls.length > 0 ? (
        m.urls.map((u) => <CopyField key={u} label="LAN URL" value={u} />)
      ) : (
        <Notice>
          Bound to loopback: nothing else on the network reaches this desk. To allow it, set the bind address to <code>0.0.0.0</code> (all
          interfaces) or one address below, and restart the gateway.
        </Notice>
      )}
      {lan.data && (
        <section class="card" aria-labelledby="lan-addrs">
          <h3 id="lan-addrs">This desk's addresses</h3>
          <ul>
            {lan.data.addresses.map((a) => (
              <li key={a.address}>
                <code>{a.address}</code>
                {a.interface ? ` (${a.interface})` : ''}
              </li>
            ))}
          </ul>
          <p class="hint">
            Listening on {lan.data.bind}:{lan.data.port}.
          </p>
        </section>
      )}
      {admin && (
        <SettingField
          settings={settings.data}
          name="gateway.host"
          label="Bind address"
          placeholder="127.0.0.1"
          hint="127.0.0.1 keeps the desk private; 0.0.0.0 listens on every interface (the token is then required from the LAN)."
          onSaved={settings.reload}
        />
      )}
    </div>
  );
}
