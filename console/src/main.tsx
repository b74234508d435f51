// The porthole console (docs/console.md): Settings → Remote access. Routes live in the URL
// fragment (never sent to the server): #/settings/remote-access[/TAB] and #/pair?code=….
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, onAuthLost } from './api';
import { startLive, stopLive, useLiveStatus } from './live';
import { PairPage, SignIn } from './signin';
import { TABS, type TabId } from './tabs';
import type { Identity } from './types';
import './style.css';

type Route = { page: 'settings'; tab: TabId } | { page: 'pair'; code: string | undefined };

export const SETTINGS = '#/settings/remote-access';

function parseRoute(hash: string): Route | undefined {
  if (hash.startsWith('#/pair')) {
    const q = hash.indexOf('?');
    const code = q < 0 ? undefined : (new URLSearchParams(hash.slice(q + 1)).get('code') ?? undefined);
    return { page: 'pair', code };
  }
  if (hash === SETTINGS || hash === `${SETTINGS}/`) return { page: 'settings', tab: 'overview' };
  if (hash.startsWith(`${SETTINGS}/`)) {
    const tab = hash.slice(SETTINGS.length + 1) as TabId;
    if (TABS.some((t) => t.id === tab)) return { page: 'settings', tab };
  }
  return undefined;
}

function useRoute(): Route {
  const read = () => parseRoute(location.hash);
  const [route, setRoute] = useState<Route | undefined>(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    if (!route) history.replaceState(null, '', SETTINGS);
  }, [route]);
  return route ?? { page: 'settings', tab: 'overview' };
}

const ACCESS_ENDED = 'Access ended: the session expired, this device was revoked, or the token was rotated. Sign in again.';

type Session = { state: 'checking' } | { state: 'out'; reason?: string } | { state: 'in'; identity: Identity };

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session>({ state: 'checking' });
  const live = useLiveStatus();

  const check = useCallback(async () => {
    try {
      const r = await api<{ identity: Identity }>('/session', { quiet401: true });
      setSession({ state: 'in', identity: r.identity });
    } catch (err) {
      setSession({ state: 'out', reason: (err as { status?: number }).status === 401 ? undefined : String((err as Error).message) });
    }
  }, []);

  useEffect(() => {
    void check();
    return onAuthLost(() => setSession({ state: 'out', reason: ACCESS_ENDED }));
  }, [check]);

  useEffect(() => {
    if (session.state === 'in') void startLive();
    else if (session.state === 'out') void stopLive();
  }, [session.state]);

  // The control plane closing with 4001/4003 means this credential no longer works.
  useEffect(() => {
    if (live.state === 'closed' && (live.error?.code === 'AUTH_REVOKED' || live.error?.code === 'AUTH_REQUIRED' || live.error?.code === 'AUTH_INVALID')) {
      setSession({ state: 'out', reason: ACCESS_ENDED });
    }
  }, [live]);

  if (route.page === 'pair') {
    return (
      <PairPage
        code={route.code}
        onPaired={() => {
          history.replaceState(null, '', SETTINGS);
          dispatchEvent(new HashChangeEvent('hashchange'));
          void check();
        }}
      />
    );
  }
  if (session.state === 'checking') {
    return (
      <main class="center" aria-busy="true">
        <p>Loading…</p>
      </main>
    );
  }
  if (session.state === 'out') return <SignIn reason={session.reason} onSignedIn={check} />;
  return <Shell identity={session.identity} tab={route.tab} onSignOut={() => setSession({ state: 'out', reason: 'Signed out.' })} />;
}

function Shell({ identity, tab, onSignOut }: { identity: Identity; tab: TabId; onSignOut: () => void }) {
  const live = useLiveStatus();
  const current = TABS.find((t) => t.id === tab) ?? TABS[0]!;
  const View = current.view;
  useEffect(() => {
    document.title = `${current.label} · Remote access · porthole`;
  }, [current]);
  const signOut = async () => {
    try {
      await api('/logout', { method: 'POST' });
    } finally {
      onSignOut();
    }
  };
  const liveText =
    live.state === 'open' ? 'Live' : live.state === 'reconnecting' || live.state === 'connecting' ? 'Reconnecting…' : 'Not live (reload to retry)';
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div>
          <p class="crumb">Settings</p>
          <h1>Remote access</h1>
        </div>
        <div class="who">
          <span class={`live live-${live.state}`} role="status" data-testid="live-state">
            {liveText}
          </span>
          <span class="scope">
            {identity.sub} · {identity.scope}
          </span>
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav class="tabs" aria-label="Remote access sections">
        {TABS.map((t) => (
          <a key={t.id} href={`${SETTINGS}/${t.id}`} aria-current={t.id === tab ? 'page' : undefined} data-testid={`tab-${t.id}`}>
            {t.label}
          </a>
        ))}
      </nav>
      <main id="main" tabIndex={-1}>
        <h2>{current.label}</h2>
        <View identity={identity} />
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
