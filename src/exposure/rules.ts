// The rules that keep exposures from undermining each other (issue 4, docs/exposure.md).
// One table, checked at start (serve refuses to start, naming every conflict with its
// fix) and again whenever an exposure is switched at run time.
import { PortholeError } from '../errors.js';
import { isLoopbackAddress } from '../auth/ip.js';

export type ExposureMethod = 'lan' | 'ssh' | 'tailscale' | 'tunnel' | 'reverseProxy';

export interface Conflict {
  /** Stable id of the rule, as in docs/exposure.md. */
  rule: string;
  methods: ExposureMethod[];
  reason: string;
  fix: string;
}

/** What the rules look at: the desired (or, at run time, actual) state of each switch. */
export interface ExposureFacts {
  bindHost: string;
  /** `none` when authentication is off (--insecure-no-auth). */
  authMode: 'token' | 'password' | 'trusted-proxy' | 'none';
  tailscale: 'off' | 'serve' | 'funnel';
  /** The public tunnel is running or asked to run now. */
  tunnel: boolean;
  tunnelAutoStart: boolean;
}

function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}

type Rule = (f: ExposureFacts) => Conflict | undefined;

export const RULES: readonly Rule[] = [
  (f) =>
    f.tailscale === 'funnel' && f.tunnel
      ? {
          rule: 'one-public-exposure',
          methods: ['tailscale', 'tunnel'],
          reason: 'Tailscale Funnel and the public tunnel would both publish this desk on the internet; one public door is easier to watch and to close',
          fix: 'stop one of them: `porthole tunnel stop`, or use Tailscale Serve (tailnet only) instead of Funnel',
        }
      : undefined,
  (f) =>
    f.tailscale !== 'off' && !isLoopbackBind(f.bindHost)
      ? {
          rule: 'tailscale-needs-loopback',
          methods: ['tailscale', 'lan'],
          reason: `Tailscale ${f.tailscale === 'funnel' ? 'Funnel' : 'Serve'} needs the gateway bound to loopback: bound to ${f.bindHost}, tailnet peers could reach it directly and bypass Serve's identity`,
          fix: 'bind to 127.0.0.1 (drop --host / gateway.host) while Tailscale is on',
        }
      : undefined,
  (f) =>
    f.tailscale === 'funnel' && f.authMode !== 'token' && f.authMode !== 'password'
      ? {
          rule: 'funnel-needs-credential',
          methods: ['tailscale'],
          reason: `Funnel traffic comes from the whole internet and carries no Tailscale identity: it needs a credential, but auth is "${f.authMode}"`,
          fix: 'use auth.mode = "token" or "password" with Funnel (and no --insecure-no-auth), or use Tailscale Serve',
        }
      : undefined,
  (f) =>
    f.tailscale !== 'off' && f.tunnelAutoStart
      ? {
          rule: 'tailscale-vs-tunnel-auto-start',
          methods: ['tailscale', 'tunnel'],
          reason: 'tunnel.auto_start would reopen a public tunnel behind the back of a desk exposed through Tailscale',
          fix: 'set tunnel.auto_start = false, or turn Tailscale exposure off',
        }
      : undefined,
  (f) =>
    f.authMode === 'none' && !isLoopbackBind(f.bindHost)
      ? {
          rule: 'remote-bind-needs-auth',
          methods: ['lan'],
          reason: `authentication is off, and the gateway would listen on ${f.bindHost}: anyone on that network could use the app`,
          fix: 'drop --insecure-no-auth, or bind to 127.0.0.1',
        }
      : undefined,
  (f) =>
    f.authMode === 'none' && f.tunnel
      ? {
          rule: 'remote-bind-needs-auth',
          methods: ['tunnel'],
          reason: 'authentication is off, and the public tunnel would put the app on the internet',
          fix: 'drop --insecure-no-auth, or keep the tunnel off',
        }
      : undefined,
];

export function findConflicts(facts: ExposureFacts): Conflict[] {
  const out: Conflict[] = [];
  for (const rule of RULES) {
    const c = rule(facts);
    if (c) out.push(c);
  }
  return out;
}

/** The error serve (or a run-time switch) fails with: every conflict, each with its fix. */
export function conflictError(conflicts: readonly Conflict[]): PortholeError {
  const lines = conflicts.map((c) => `- ${c.reason}.\n  Fix: ${c.fix}.`);
  return new PortholeError(
    'EXPOSURE_CONFLICT',
    `${conflicts.length === 1 ? 'an exposure conflict' : `${conflicts.length} exposure conflicts`}:\n${lines.join('\n')}`,
  );
}

/** Throws EXPOSURE_CONFLICT when any rule is broken. */
export function assertNoConflicts(facts: ExposureFacts): void {
  const conflicts = findConflicts(facts);
  if (conflicts.length > 0) throw conflictError(conflicts);
}
