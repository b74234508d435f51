// Overview: each way in, its state and URLs, and every conflict between them, with cards
// that jump to the method's tab.
import type { MethodId } from '../types';
import { Badge, ErrorLine } from '../ui';
import { type TabProps, useStatus } from './common';

const METHODS: { id: MethodId; label: string; tab: string }[] = [
  { id: 'tailscale', label: 'Tailscale', tab: 'tailscale' },
  { id: 'tunnel', label: 'Public internet (relay tunnel)', tab: 'public' },
  { id: 'reverseProxy', label: 'Reverse proxy', tab: 'proxy' },
  { id: 'ssh', label: 'SSH tunnel', tab: 'ssh' },
  { id: 'lan', label: 'Local network', tab: 'lan' },
];

const LABEL: Record<string, string> = Object.fromEntries(METHODS.map((m) => [m.id, m.label]));

export function OverviewTab(_: TabProps) {
  const status = useStatus();
  const exposure = status.data?.exposure;
  return (
    <div>
      <ErrorLine error={status.error} />
      {status.data && !exposure && <p>This gateway reports no remote-access overview (an embedded gateway without a listener of its own).</p>}
      {exposure && exposure.conflicts.length > 0 && (
        <section class="card conflicts" aria-labelledby="conflicts-title">
          <h3 id="conflicts-title">Conflicts</h3>
          <ul>
            {exposure.conflicts.map((c) => (
              <li key={c.rule} data-testid={`conflict-${c.rule}`}>
                <strong>{c.methods.map((m) => LABEL[m] ?? m).join(' + ')}:</strong> {c.reason} <em>Fix:</em> {c.fix}
              </li>
            ))}
          </ul>
        </section>
      )}
      <ul class="cards" data-testid="overview-cards">
        {exposure &&
          METHODS.map((m) => {
            const s = exposure.methods[m.id];
            if (!s) return null;
            return (
              <li key={m.id}>
                <a class="card method" href={`#/settings/remote-access/${m.tab}`} data-testid={`card-${m.id}`}>
                  <span class="method-head">
                    <span class="method-name">{m.label}</span>
                    <Badge health={s.health} />
                  </span>
                  <span class="detail">{s.detail}</span>
                  {s.urls.length > 0 && (
                    <span class="urls">
                      {s.urls.map((u) => (
                        <code key={u}>{u}</code>
                      ))}
                    </span>
                  )}
                </a>
              </li>
            );
          })}
      </ul>
    </div>
  );
}
