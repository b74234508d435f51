// Tailscale Serve / Funnel for a running gateway: checks tailscaled, opens the dedicated
// listener, maps https://<node>/ to it with `tailscale serve|funnel --bg`, confirms the
// mapping with `tailscale serve status --json`, and removes only that mapping again.
import type { IncomingMessage } from 'node:http';
import { posix } from 'node:path';
import type { TailscaleConfig } from '../config/schema.js';
import { PortholeError, isPortholeError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import { type Logger, debugLogger } from '../log.js';
import { MAX_SOCKET_PATH_BYTES, type StatePaths } from '../secrets/paths.js';
import { createTailscaleRunner, runOk, tailscaleFailure, type RunResult, type TailscaleRunner } from './cli.js';
import { listenTailscale, type TailscaleListener } from './listener.js';
import { type PeerVerdict, verifyTailscaleRequest } from './peer.js';
import { conflictFor, ourMapping, parseServeConfig, SERVE_MOUNT, SERVE_PORT, viewPort } from './serve-config.js';
import { clearRecord, readRecord, writeRecord } from './state.js';
import { funnelAllows, readStatus, requireRunning, type NodeStatus } from './status.js';
import { createWhois, type Whois } from './whois.js';

export type TailscaleMapMode = 'serve' | 'funnel';

/** What a running gateway's Tailscale exposure is doing now (no tailscale call needed). */
export interface TailscaleState {
  mode: 'off' | TailscaleMapMode;
  /** https://<node>/ while mapped. */
  url: string | null;
  dnsName: string | null;
  /** The listener Serve proxies to: a Unix socket, or a loopback port. */
  listener: 'unix' | 'tcp' | null;
  target: string | null;
  /** Logins let in without a credential (lower-cased). */
  allowUsers: string[];
}

export interface ResetResult {
  /** porthole's mapping was found and removed. */
  removed: boolean;
  /** Why nothing was removed, when it was not. */
  note: string | null;
}

export interface TailscaleExposure {
  /** Maps (or re-maps) https://<node>/ in `mode`. Fails with a TAILSCALE_* code, changing nothing. */
  start(mode: TailscaleMapMode): Promise<TailscaleState>;
  /** Removes porthole's mapping (and only it) and closes the listener. */
  reset(): Promise<ResetResult>;
  state(): TailscaleState;
  /** Ends the listener; removes the mapping when reset_on_exit is set or it points at a loopback port. */
  close(): Promise<void>;
}

export interface TailscaleExposureOptions {
  gateway: Gateway;
  paths: StatePaths;
  config: TailscaleConfig;
  /** Default: the `tailscale` on PATH. */
  run?: TailscaleRunner;
  logger?: Logger;
  /**
   * Called before every mapping with the mode asked for; throws to refuse (the exposure rules,
   * docs/exposure.md, e.g. Funnel beside the public tunnel). Default: none.
   */
  guard?: (mode: TailscaleMapMode) => void;
  /**
   * The gateway runs without authentication (--insecure-no-auth): nobody can be asked for a
   * credential, so the listener lets through only requests that would skip it anyway — logins
   * in allow_users — and refuses other tailnet users, tagged nodes and Funnel traffic (Funnel
   * is per port: another route on 443 can switch it on for porthole's mapping too).
   */
  noAuth?: boolean;
}

/** Where the Unix socket goes: next to the gateway's socket, in its 0700 directory; undefined if none fits. */
export function tailscaleSocketPath(paths: StatePaths): string | undefined {
  if (process.platform === 'win32' || paths.socketPath.startsWith('\\\\.\\pipe\\')) return undefined;
  const dir = posix.dirname(paths.socketPath);
  const p = dir === paths.runDir ? posix.join(dir, 'tailscale.sock') : paths.socketPath.replace(/\.sock$/, '-tailscale.sock');
  return Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES ? p : undefined;
}

const OFF: TailscaleState = { mode: 'off', url: null, dnsName: null, listener: null, target: null, allowUsers: [] };

/** `serve --bg --https=443 --set-path=/ TARGET`: the whole of porthole's mapping. */
export function mapArgs(mode: TailscaleMapMode, target: string): string[] {
  return [mode, '--bg', `--https=${SERVE_PORT}`, `--set-path=${SERVE_MOUNT}`, target];
}
/** Removes the "/" mount on 443 only; without --set-path, `off` would remove every mount on the port. */
export const UNMAP_ARGS: readonly string[] = ['serve', `--https=${SERVE_PORT}`, `--set-path=${SERVE_MOUNT}`, 'off'];

/** tailscale refused the Unix socket target (an older version, or not root): use a loopback port. */
function unixRefused(r: RunResult): boolean {
  const text = `${r.stderr}\n${r.stdout}`;
  if (r.code === 0 || /Access denied|failed to connect/i.test(text)) return false;
  return /must be root|supported schemes|unix socket/i.test(text);
}

const FEATURE_PROMPT = /To enable, visit:|is not enabled on your tailnet/i;

export async function readServeConfig(run: TailscaleRunner): Promise<Record<string, unknown>> {
  const r = await runOk(run, ['serve', 'status', '--json'], 'tailscale serve status');
  return parseServeConfig(r.stdout);
}

/** Checks that `mode` can work on this node, with the error that says how to fix it. */
export function requireCapabilities(st: NodeStatus, mode: TailscaleMapMode): void {
  requireRunning(st);
  if (!st.https) {
    throw new PortholeError(
      'TAILSCALE_HTTPS_DISABLED',
      'HTTPS certificates are not enabled for this tailnet, and Serve needs them: enable them in the admin console (DNS → HTTPS Certificates, https://tailscale.com/kb/1153/enabling-https)',
    );
  }
  if (mode === 'funnel' && !funnelAllows(st, SERVE_PORT)) {
    throw new PortholeError(
      'TAILSCALE_FUNNEL_DISABLED',
      st.funnel
        ? `Funnel is enabled for this node but not on port ${SERVE_PORT} (allowed: ${st.funnelPorts || 'none'}): change the funnel-ports attribute in the tailnet policy`
        : 'Funnel is not enabled for this node: add the "funnel" node attribute in the tailnet policy file (https://tailscale.com/kb/1223/funnel)',
    );
  }
}

export function createTailscaleExposure(options: TailscaleExposureOptions): TailscaleExposure {
  const { gateway, paths, config } = options;
  const run = options.run ?? createTailscaleRunner();
  const logger = options.logger ?? debugLogger;
  const whois: Whois = createWhois({ run });
  let allowUsers = new Set<string>();
  let listener: TailscaleListener | undefined;
  let current: TailscaleState = OFF;
  let queue: Promise<unknown> = Promise.resolve();
  /** One tailscale change at a time: start/reset from the CLI may race a shutdown. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };

  const verify = async (req: IncomingMessage): Promise<PeerVerdict> => {
    const v = await verifyTailscaleRequest(req.headers, { whois, allowUsers });
    if (!options.noAuth || !v.ok || v.peer.allowed) return v;
    const who = v.peer.funnel ? 'Funnel traffic from the internet' : `${v.peer.login ?? 'a tagged node'} (not in tailscale.allow_users)`;
    return {
      ok: false,
      err: new PortholeError('TAILSCALE_PEER_UNVERIFIED', `${who}: the gateway runs with --insecure-no-auth, so only allow_users may come in through Tailscale`),
    };
  };

  async function openListener(unix: boolean): Promise<TailscaleListener> {
    const socketPath = unix ? tailscaleSocketPath(paths) : undefined;
    return listenTailscale({ gateway, socketPath, verify, logger });
  }

  async function closeListener(): Promise<void> {
    const l = listener;
    listener = undefined;
    await l?.close();
  }

  async function map(mode: TailscaleMapMode): Promise<TailscaleListener> {
    const attempt = async (l: TailscaleListener) =>
      run(mapArgs(mode, l.target), { abortOn: FEATURE_PROMPT, timeoutMs: 30_000 });
    let l = listener ?? (await openListener(tailscaleSocketPath(paths) !== undefined));
    let r = await attempt(l);
    if (l.kind === 'unix' && unixRefused(r)) {
      logger.log('info', 'tailscale cannot proxy to a Unix socket here; using a loopback port', { reason: r.stderr.split('\n')[0] });
      await l.close();
      l = await openListener(false);
      r = await attempt(l);
    }
    listener = l;
    // `serve` prints the enable link and exits 0 without changing anything when the feature is
    // off and it may not wait: that is a failure too.
    if (r.code !== 0 || r.aborted || FEATURE_PROMPT.test(r.stdout)) throw tailscaleFailure(r, `tailscale ${mode}`);
    return l;
  }

  return {
    start: (mode) =>
      serial(async () => {
        options.guard?.(mode);
        const st = await readStatus(run);
        requireCapabilities(st, mode);
        const before = viewPort(await readServeConfig(run), st.dnsName);
        const record = readRecord(paths);
        const mine = new Set([record?.target, listener?.target].filter((t): t is string => t !== undefined));
        const conflict = conflictFor(before, mine, mode);
        if (conflict) throw new PortholeError('TAILSCALE_ROUTE_CONFLICT', conflict);

        allowUsers = new Set((config.allow_users.length > 0 ? config.allow_users : st.owner ? [st.owner] : []).map((u) => u.toLowerCase()));
        gateway.addHostName(st.dnsName);
        const hadListener = listener !== undefined;
        let l: TailscaleListener;
        try {
          l = await map(mode);
        } catch (err) {
          if (!hadListener) await closeListener();
          throw err;
        }
        // Trust, but verify: the mapping must now be there, exactly as asked.
        const after = viewPort(await readServeConfig(run), st.dnsName);
        const ours = ourMapping(after, new Set([l.target]));
        if (!ours || ours.funnel !== (mode === 'funnel')) {
          throw new PortholeError('TAILSCALE_FAILED', `tailscale ${mode} reported success, but serve status does not show porthole's mapping`);
        }
        writeRecord(paths, { v: 1, dnsName: st.dnsName, port: SERVE_PORT, mount: SERVE_MOUNT, target: l.target, mode });
        current = {
          mode,
          url: `https://${st.dnsName}/`,
          dnsName: st.dnsName,
          listener: l.kind,
          target: l.target,
          allowUsers: [...allowUsers],
        };
        logger.log('info', 'tailscale mapped', { mode, url: current.url, listener: l.kind });
        return current;
      }),
    reset: () =>
      serial(async () => {
        const result = await removeMapping(run, paths, listener?.target);
        await closeListener();
        current = OFF;
        return result;
      }),
    state: () => current,
    close: () =>
      serial(async () => {
        if (current.mode !== 'off' && (config.reset_on_exit || listener?.kind === 'tcp')) {
          // A loopback port is gone once we exit, and another program could take it: the
          // mapping must not outlive us. A Unix socket path stays ours, so it may.
          try {
            await removeMapping(run, paths, listener?.target);
          } catch (err) {
            logger.log('warn', 'could not remove the tailscale mapping on exit', { code: isPortholeError(err) ? err.code : 'error' });
          }
        }
        await closeListener();
        current = OFF;
      }),
  };
}

/**
 * Removes porthole's mapping — the "/" handler on 443 if it still points where porthole
 * pointed it — and nothing else. Never `tailscale serve reset`, which wipes every route.
 */
export async function removeMapping(run: TailscaleRunner, paths: StatePaths, liveTarget?: string): Promise<ResetResult> {
  const record = readRecord(paths);
  const mine = new Set([record?.target, liveTarget].filter((t): t is string => t !== undefined));
  if (mine.size === 0) return { removed: false, note: 'porthole has no Tailscale mapping on record' };
  const st = await readStatus(run);
  requireRunning(st);
  const dnsName = st.dnsName || record?.dnsName || '';
  const view = viewPort(await readServeConfig(run), dnsName);
  if (!ourMapping(view, mine)) {
    clearRecord(paths);
    const root = view.handlers.get(SERVE_MOUNT);
    return {
      removed: false,
      note: root ? `https://${dnsName}/ now points elsewhere (${root.describe}); left as is` : 'the mapping was already gone',
    };
  }
  await runOk(run, [...UNMAP_ARGS], 'tailscale serve off');
  clearRecord(paths);
  return { removed: true, note: null };
}
