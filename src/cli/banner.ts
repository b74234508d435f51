// The human banner for `porthole serve` and the demo (stderr): where it listens, and when
// remote access is on, a framed notice with the connect URL, a one-time link and its QR.
import { renderUnicodeCompact } from 'uqr';

export interface BannerInput {
  url: string;
  target: string | undefined;
  remoteAccess: boolean;
  connectUrl: string | undefined;
  /** Link carrying a fresh one-time code. */
  link: string | undefined;
  /** Shown once, only when porthole generated it at this start. */
  generatedToken: string | undefined;
  tokenSource: string;
  insecureNoAuth: boolean;
  loopbackExempt: boolean;
  socketPath: string;
  /** Show the link and QR even on a loopback bind (the demo). */
  alwaysShowLink?: boolean;
  /** auth.mode; default token. */
  authMode?: 'token' | 'password' | 'trusted-proxy';
  /** The trusted proxy's user header (trusted-proxy mode). */
  userHeader?: string;
}

export function qr(text: string): string {
  return renderUnicodeCompact(text, { border: 1 });
}

function frame(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 2;
  const bar = '═'.repeat(width);
  return [`╔${bar}╗`, ...lines.map((l) => `║ ${l.padEnd(width - 1)}║`), `╚${bar}╝`].join('\n');
}

export function renderBanner(b: BannerInput): string {
  const out: string[] = [];
  out.push(`porthole gateway listening on ${b.url}${b.target ? ` → ${b.target}` : ''}`);
  out.push(`  console: ${b.url}/_porthole/ui/   (Settings → Remote access; sign in with the link below or the token)`);
  out.push(`  control socket: ${b.socketPath}`);
  if (b.insecureNoAuth) {
    out.push(
      frame([
        'WARNING: authentication is OFF (--insecure-no-auth).',
        'Anyone who can reach this address can use the app,',
        b.remoteAccess ? 'and it is reachable from other machines.' : 'including any web page you visit.',
      ]),
    );
  }
  if (b.remoteAccess && !b.insecureNoAuth) {
    const lines = ['Remote access is ON'];
    if (b.connectUrl) lines.push(`Connect: ${b.connectUrl}`);
    else lines.push('No address to show: bound to a wildcard with no LAN address.', 'Pass --host ADDRESS or --allowed-origins.');
    out.push(frame(lines));
  }
  if (b.link && (b.remoteAccess || b.alwaysShowLink)) {
    out.push(`One-time link (single use, expires in 5 minutes):\n  ${b.link}`);
    out.push(qr(b.link));
  } else if (b.remoteAccess && !b.insecureNoAuth && !b.connectUrl) {
    out.push('(no QR code: no address to put in it)');
  }
  if (!b.insecureNoAuth && b.authMode === 'password') {
    out.push('Sign-in: password — browsers get a login page (/_porthole/login); API clients may still use the token.');
  } else if (!b.insecureNoAuth && b.authMode === 'trusted-proxy') {
    out.push(
      `Sign-in: through the trusted proxy (user in ${b.userHeader ?? 'its user header'}); porthole tokens, links and codes are not accepted remotely.`,
      'The token below serves only the CLI on this machine.',
    );
  }
  if (b.generatedToken) {
    out.push(
      `A new token was generated and stored (${b.tokenSource}). It is shown this once;`,
      `later, \`porthole token show\` prints it:\n  ${b.generatedToken}`,
    );
  } else if (!b.insecureNoAuth) {
    // A token from a flag or the environment is the caller's: `token show` knows neither.
    const suppliedHere = b.tokenSource.startsWith('--') || b.tokenSource === 'PORTHOLE_AUTH_TOKEN';
    out.push(suppliedHere ? `Token: from ${b.tokenSource}.` : `Token: from ${b.tokenSource} (\`porthole token show\` prints it).`);
  }
  if (!b.remoteAccess) {
    out.push(
      b.loopbackExempt
        ? 'Local only: browsers on this machine need no token; other machines cannot connect.'
        : 'Local only; the loopback exemption is off, so every client needs a credential.',
    );
  }
  return `${out.join('\n')}\n`;
}
