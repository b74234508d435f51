// Reverse proxy: the public URL at which your own proxy (Caddy, nginx) serves this desk,
// filled in from what a proxy reported when one is in front; a Test that fetches
// <url>/_porthole/ping through it; and ready-made Caddy and nginx snippets.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { CopyField, ErrorLine, Notice, useAction } from '../ui';
import { AdminOnly, methodOf, type TabProps, useSettings, useStatus } from './common';

interface ProbeAnswer {
  ok: boolean;
  url?: string;
  pingUrl?: string;
  code?: string;
  message?: string;
  [extra: string]: unknown;
}

export function ProxyTab({ identity }: TabProps) {
  const admin = identity.scope === 'admin';
  const status = useStatus();
  const settings = useSettings(admin);
  const m = methodOf(status.data?.exposure, 'reverseProxy');
  const detected = typeof m?.['detectedPublicUrl'] === 'string' ? (m['detectedPublicUrl'] as string) : undefined;
  const saved = settings.data?.['gateway.public_url']?.value;
  const [url, setUrl] = useState<string | undefined>(undefined);
  const shown = url ?? (typeof saved === 'string' ? saved : (detected ?? ''));
  const [probe, setProbe] = useState<ProbeAnswer>();
  const [snippets, setSnippets] = useState<{ caddy: string; nginx: string }>();
  const test = useAction(async () => {
    setProbe(await api<ProbeAnswer>('/proxy/test', { method: 'POST', body: shown ? { url: shown } : {} }));
  });
  const makeSnippets = useAction(async () => {
    const q = `publicUrl=${encodeURIComponent(shown)}`;
    const [caddy, nginx] = await Promise.all([
      api<string>(`/proxy/config?kind=caddy&${q}`, { text: true }),
      api<string>(`/proxy/config?kind=nginx&${q}`, { text: true }),
    ]);
    setSnippets({ caddy, nginx });
  });
  const save = useAction(async () => {
    await api('/settings', { method: 'POST', body: { 'gateway.public_url': shown.trim() || null } });
    setUrl(undefined);
    settings.reload();
  });
  const locked = ['file', 'env', 'flag'].includes(settings.data?.['gateway.public_url']?.source ?? '');
  return (
    <div>
      <p>
        Serve this desk at your own domain through Caddy or nginx. porthole trusts the proxy's headers only from the addresses in{' '}
        <code>gateway.trusted_proxies</code>.
      </p>
      <ErrorLine error={status.error} />
      {m && <p data-testid="proxy-detail">{m.detail}</p>}
      {detected && (
        <Notice>
          Requests arrive through a proxy as <code>{detected}</code>.{' '}
          {shown !== detected && (
            <button type="button" class="link" onClick={() => setUrl(detected)}>
              Use it
            </button>
          )}
        </Notice>
      )}
      {!admin ? (
        <AdminOnly what="Setting up the reverse proxy" />
      ) : (
        <section class="card" aria-labelledby="proxy-url">
          <h3 id="proxy-url">Your domain</h3>
          <label for="public-url">Public URL</label>
          <input
            id="public-url"
            type="url"
            inputMode="url"
            placeholder="https://desk.example.com"
            value={shown}
            disabled={locked}
            spellcheck={false}
            onInput={(e) => setUrl(e.currentTarget.value)}
          />
          {locked && <p class="hint">Set in {settings.data?.['gateway.public_url']?.source}: change it there.</p>}
          <div class="buttons">
            <button type="button" disabled={test.busy || !shown} onClick={() => test.run()}>
              Test
            </button>
            <button type="button" disabled={save.busy || locked} onClick={() => save.run()}>
              Save as default
            </button>
            <button type="button" disabled={makeSnippets.busy || !shown} onClick={() => makeSnippets.run()}>
              Show Caddy and nginx config
            </button>
          </div>
          <ErrorLine error={test.error ?? save.error ?? makeSnippets.error} />
          {probe && (
            <Notice kind={probe.ok ? 'ok' : 'warn'}>
              <span data-testid="proxy-test-result">
                {probe.ok ? `porthole answers at ${probe.pingUrl ?? shown}.` : `${probe.message ?? 'The test failed'}${probe.code ? ` [${probe.code}]` : ''}`}
              </span>
            </Notice>
          )}
          <p class="hint">
            Saved: {typeof saved === 'string' ? <code>{saved}</code> : 'none'} ({settings.data?.['gateway.public_url']?.source ?? '—'}). A
            saved URL takes effect when the gateway restarts.
          </p>
        </section>
      )}
      {snippets && (
        <section class="card" aria-labelledby="snippets">
          <h3 id="snippets">Proxy configuration</h3>
          <CopyField label="Caddyfile" value={snippets.caddy} multiline testId="snippet-caddy" />
          <CopyField label="nginx server block" value={snippets.nginx} multiline testId="snippet-nginx" />
        </section>
      )}
    </div>
  );
}
