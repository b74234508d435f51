// Signing in without a session: the token (traded for a session cookie by
// POST /_porthole/api/session with the token in an Authorization header: never in a URL),
// or a pairing code — the short one typed by hand, or the long one from a QR link
// (#/pair?code=…), exchanged for a device of kind "browser" and its session.
import { useEffect, useState } from 'preact/hooks';
import { api, describeError } from './api';
import type { Device } from './types';
import { ErrorLine, Notice } from './ui';

function guessDeviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /iPhone|iPad/.test(ua) ? 'iOS' : /Android/.test(ua) ? 'Android' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

interface ExchangeAnswer {
  device: Device;
}

async function exchange(body: { code?: string; shortCode?: string; name: string }): Promise<Device> {
  const r = await api<ExchangeAnswer>('/pair/exchange', { method: 'POST', body: { ...body, kind: 'browser' }, quiet401: true });
  return r.device;
}

function Pending({ device, onCheck }: { device: Device; onCheck: () => void }) {
  return (
    <Notice kind="warn">
      <p>
        “{device.name}” is paired but waits for approval on the desk (Devices tab, or <code>porthole devices</code>).
      </p>
      <button type="button" onClick={onCheck}>
        Check again
      </button>
    </Notice>
  );
}

export function SignIn({ reason, onSignedIn }: { reason?: string | undefined; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [short, setShort] = useState('');
  const [name, setName] = useState(guessDeviceName);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [pending, setPending] = useState<Device>();

  const withToken = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const t = token.trim();
    if (!/^phd?_[A-Za-z0-9_-]+$/.test(t)) {
      setError(new Error('That is not a porthole token: it starts with ph_ (`porthole token show` on the desk prints it).'));
      return;
    }
    setBusy(true);
    try {
      await api('/session', { method: 'POST', headers: { authorization: `Bearer ${t}` }, quiet401: true });
      setToken('');
      onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const withCode = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const device = await exchange({ shortCode: short.trim(), name: name.trim() || guessDeviceName() });
      setShort('');
      if (device.status === 'pending') setPending(device);
      else onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="center signin">
      <h1>porthole</h1>
      <p class="lead">Sign in to manage remote access to this desk.</p>
      {reason && <Notice kind="warn">{reason}</Notice>}
      {pending && <Pending device={pending} onCheck={onSignedIn} />}
      <ErrorLine error={error} />
      <form class="card" onSubmit={withCode} aria-labelledby="code-title">
        <h2 id="code-title">Pair with a code</h2>
        <p class="hint">
          On the desk: <code>porthole pair</code>, or Devices → Pair a device in a signed-in console. Type the short code it shows.
        </p>
        <label for="short-code">Pairing code</label>
        <input
          id="short-code"
          name="shortCode"
          autocomplete="one-time-code"
          autocapitalize="characters"
          spellcheck={false}
          placeholder="XXXXX-XXXXX"
          value={short}
          onInput={(e) => setShort(e.currentTarget.value)}
          required
        />
        <label for="device-name">Name for this device</label>
        <input id="device-name" name="name" value={name} maxLength={64} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          Pair this browser
        </button>
      </form>
      <form class="card" onSubmit={withToken} aria-labelledby="token-title">
        <h2 id="token-title">Use the token</h2>
        <p class="hint">
          The desk's token (<code>porthole token show</code>). It is sent once, in a header, and traded for a session cookie; it is not stored
          in this browser.
        </p>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          required
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

/**
 * #/pair?code=phc_… (the QR link). Pairing waits for a click: a link previewer that runs
 * scripts must not spend the single-use code. The code leaves the address bar at once (it is
 * kept in memory only), so a reload before the click shows "no code".
 */
export function PairPage({ code, onPaired }: { code: string | undefined; onPaired: () => void }) {
  const [name, setName] = useState(guessDeviceName);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [pending, setPending] = useState<Device>();
  const valid = code !== undefined && /^phc_[A-Za-z0-9_-]+$/.test(code);
  // The code is read once, into memory; the address bar (so the history entry, a synced
  // history, a screenshot) keeps only #/pair from the first render on, clicked or not.
  useEffect(() => {
    if (/[?&]code=/.test(location.hash)) history.replaceState(null, '', '#/pair');
  }, []);

  const pair = async (e: Event) => {
    e.preventDefault();
    if (!valid) return;
    setBusy(true);
    setError(undefined);
    try {
      const device = await exchange({ code, name: name.trim() || guessDeviceName() });
      history.replaceState(null, '', '#/pair');
      if (device.status === 'pending') setPending(device);
      else onPaired();
    } catch (err) {
      setError(err);
      history.replaceState(null, '', '#/pair');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="center signin">
      <h1>Pair this browser</h1>
      {pending ? (
        <Pending device={pending} onCheck={onPaired} />
      ) : valid ? (
        <form class="card" onSubmit={pair}>
          <p>This link lets this browser manage the desk's remote access. It works once and for 5 minutes.</p>
          <label for="pair-name">Name for this device</label>
          <input id="pair-name" value={name} maxLength={64} onInput={(e) => setName(e.currentTarget.value)} />
          <button type="submit" disabled={busy} data-testid="pair-submit">
            Pair this browser
          </button>
        </form>
      ) : (
        <Notice kind="warn">
          {error ? describeError(error) : 'This pairing link has no code or was already used.'}{' '}
          <a href="#/settings/remote-access">Sign in another way</a>
        </Notice>
      )}
      {valid && <ErrorLine error={error} />}
    </main>
  );
}
