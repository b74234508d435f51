// Security: rotate the desk's token (every session and connection it authenticated ends;
// the new token is read on the desk, never shown here) and the audit log.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorLine, formatTime, Notice, useAction, useLoad } from '../ui';
import { AdminOnly, type TabProps } from './common';

type Entry = { ts?: string; time?: string; event?: string; [k: string]: unknown };

function fields(e: Entry): string {
  return Object.entries(e)
    .filter(([k]) => k !== 'ts' && k !== 'time' && k !== 'event')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export function SecurityTab({ identity }: TabProps) {
  const admin = identity.scope === 'admin';
  const audit = useLoad(() => (admin ? api<{ entries: Entry[] }>('/audit?limit=100').then((r) => r.entries) : Promise.resolve([])), [admin]);
  const [rotated, setRotated] = useState<{ sessionsEnded: number; connectionsClosed: number }>();
  const rotate = useAction(async () => {
    setRotated(await api<{ sessionsEnded: number; connectionsClosed: number }>('/token/rotate', { method: 'POST', body: {} }));
    audit.reload();
  });
  if (!admin) return <AdminOnly what="Security settings" />;
  return (
    <div>
      <section class="card" aria-labelledby="rotate-title">
        <h3 id="rotate-title">Rotate the token</h3>
        <p>
          Makes a new desk token. The old one stops working at once: every session and connection it opened ends (this one too, if you signed in
          with it). Paired devices keep their own credentials. Read the new token on the desk with <code>porthole token show</code>.
        </p>
        <button
          type="button"
          class="danger"
          disabled={rotate.busy}
          onClick={() => {
            if (confirm('Rotate the token now? Everything signed in with the current token is signed out.')) void rotate.run();
          }}
        >
          Rotate token
        </button>
        {rotated && (
          <Notice kind="ok">
            Rotated: {rotated.sessionsEnded} sessions ended, {rotated.connectionsClosed} connections closed.
          </Notice>
        )}
        <ErrorLine error={rotate.error} />
      </section>
      <section class="card" aria-labelledby="audit-title">
        <h3 id="audit-title">Audit log</h3>
        <button type="button" onClick={audit.reload} disabled={audit.loading}>
          Refresh
        </button>
        <ErrorLine error={audit.error} />
        <ol class="audit" data-testid="audit-log">
          {(audit.data ?? []).map((e, i) => (
            <li key={i}>
              <time>{formatTime(e.ts ?? e.time)}</time> <strong>{e.event ?? '?'}</strong> <span class="hint">{fields(e)}</span>
            </li>
          ))}
          {audit.data?.length === 0 && <li>No entries yet.</li>}
        </ol>
      </section>
    </div>
  );
}
