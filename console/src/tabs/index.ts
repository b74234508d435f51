// The tabs of Settings → Remote access, in order; the route is #/settings/remote-access/<id>.
import type { FunctionComponent } from 'preact';
import type { TabProps } from './common';
import { DevicesTab } from './devices';
import { LanTab } from './lan';
import { OverviewTab } from './overview';
import { ProxyTab } from './proxy';
import { PublicTab } from './public';
import { SecurityTab } from './security';
import { SshTab } from './ssh';
import { TailscaleTab } from './tailscale';

export type TabId = 'overview' | 'tailscale' | 'public' | 'proxy' | 'ssh' | 'lan' | 'devices' | 'security';

export const TABS: readonly { id: TabId; label: string; view: FunctionComponent<TabProps> }[] = [
  { id: 'overview', label: 'Overview', view: OverviewTab },
  { id: 'tailscale', label: 'Tailscale', view: TailscaleTab },
  { id: 'public', label: 'Public internet', view: PublicTab },
  { id: 'proxy', label: 'Reverse proxy', view: ProxyTab },
  { id: 'ssh', label: 'SSH tunnel', view: SshTab },
  { id: 'lan', label: 'Local network', view: LanTab },
  { id: 'devices', label: 'Devices', view: DevicesTab },
  { id: 'security', label: 'Security', view: SecurityTab },
];
