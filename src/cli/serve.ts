// `porthole serve`: the sidecar gateway. Prints the banner (stderr) or JSON lifecycle
// events (stdout, one object per line) and returns a handle main() stops on a signal.
import type { ConfigFlags } from '../config/load.js';
import { startServe, type RunningGateway } from '../gateway/serve.js';
import { renderBanner } from './banner.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import { tlsChoiceFromConfig } from '../tls/gateway-cert.js';

/** --tls off|self-signed, --tls-cert F --tls-key F are config flags (gateway.tls, tls_cert, tls_key). */
export interface ServeFlags extends ConfigFlags {
  config?: string;
  json?: boolean;
  insecureNoAuth?: boolean;
  authToken?: string;
}

export async function serveCommand(ctx: CliContext, flags: ServeFlags): Promise<{ stop(): Promise<void>; running: RunningGateway }> {
  const paths = homePaths(ctx);
  const { config: configFile, json, insecureNoAuth, authToken, ...configFlags } = flags;
  const loaded = loadCliConfig(ctx, paths, configFile, configFlags);
  const tls = tlsChoiceFromConfig(loaded.config.gateway, loaded.sources);
  const running = await startServe({
    home: paths.home,
    config: loaded.config,
    // --auth-token-file also lands in auth.token_file; passing it here keeps it above the env.
    tokenFlags: { authToken, authTokenFile: configFlags.authTokenFile === undefined ? undefined : loaded.config.auth.token_file },
    env: ctx.env,
    insecureNoAuth,
    tls,
    // For the console's settings API: where each value comes from, re-read when asked.
    configInputs: { home: paths.home, configFile, env: ctx.env, flags: configFlags },
  });
  const { gateway, listening } = running;
  const base = running.connect?.url ?? listening.url;
  const link = running.code ? `${base}/?code=${running.code}` : undefined;
  const generatedToken = gateway.tokenInfo.generated ? gateway.revealToken() : undefined;
  const event = {
    event: 'listening',
    url: listening.url,
    host: listening.host,
    port: listening.port,
    target: loaded.config.gateway.target,
    remoteAccess: running.remoteAccess,
    connectUrl: running.connect?.url ?? null,
    link: link ?? null,
    socket: running.socketPath,
    auth: insecureNoAuth ? 'none' : loaded.config.auth.mode,
    tokenSource: gateway.tokenInfo.describe,
    ...(generatedToken ? { generatedToken } : {}),
    tls: running.tls
      ? { pin: `sha256/${running.tls.pins.spkiSha256}`, fingerprint256: running.tls.pins.fingerprint256, source: running.tls.source, certificate: running.tls.certFile, notAfter: running.tls.notAfter }
      : null,
  };
  if (json) ctx.stdout.write(`${JSON.stringify(event)}\n`);
  const ts = running.tailscale.state();
  if (json && ts.mode !== 'off') ctx.stdout.write(`${JSON.stringify({ event: 'tailscale', ...ts })}\n`);
  const tunnelLine = (s: Record<string, unknown>) => `${JSON.stringify({ event: 'tunnel', ...s })}\n`;
  running.tunnel.on('state', (s) => {
    if (json) ctx.stdout.write(tunnelLine(s));
    if (s.state === 'online') ctx.stderr.write(`Tunnel online: ${s.url}\n`);
    else if (s.state === 'waiting') ctx.stderr.write(`Tunnel offline (${s.lastError.code}); retrying in ${Math.round(s.retryInMs / 100) / 10} s\n`);
  });
  running.tunnel.onCertificate((c) => {
    if (json) ctx.stdout.write(`${JSON.stringify({ event: 'tunnel-certificate', ...c })}\n`);
    if (c.source === 'acme' && c.state === 'valid') ctx.stderr.write(`Tunnel certificate for ${c.name} valid until ${c.notAfter}\n`);
    else if (c.source === 'acme' && c.state === 'failed') ctx.stderr.write(`Tunnel certificate for ${c.name}: ${c.error}\n`);
  });
  // A notice for each device change, so the person at the desk sees a new pairing at once.
  gateway.control.subscribe('devices.changed', (payload) => {
    const p = payload as { reason: string; device: { id: string; name: string; scope: string; status: string } };
    if (json) ctx.stdout.write(`${JSON.stringify({ event: 'device', reason: p.reason, device: p.device })}\n`);
    const d = p.device;
    const pending = d.status === 'pending' ? ` — pending: approve with \`porthole devices approve ${d.id}\`` : '';
    ctx.stderr.write(`Device ${p.reason}: ${JSON.stringify(d.name)} (${d.id}, ${d.scope})${pending}\n`);
  });
  if (running.tunnelStartError) {
    const e = running.tunnelStartError;
    if (json) ctx.stdout.write(tunnelLine({ state: 'not-started', code: e.code, message: e.message }));
    ctx.stderr.write(`Tunnel not started: ${e.message} [${e.code}]\n`);
  }
  ctx.stderr.write(
    renderBanner({
      url: listening.url,
      target: loaded.config.gateway.target,
      remoteAccess: running.remoteAccess,
      connectUrl: running.connect?.url,
      link,
      generatedToken,
      tokenSource: gateway.tokenInfo.describe,
      insecureNoAuth: Boolean(insecureNoAuth),
      loopbackExempt: loaded.config.auth.loopback_exempt,
      socketPath: running.socketPath,
      authMode: loaded.config.auth.mode,
      userHeader: loaded.config.auth.trusted_proxy.user_header,
    }),
  );
  if (running.tls) {
    const t = running.tls;
    const what = t.source === 'self-signed' ? `self-signed certificate (${t.action}, ${t.certFile})` : `certificate ${t.certFile}`;
    ctx.stderr.write(
      `TLS 1.3: ${what}, valid until ${t.notAfter}\n` +
        `  pin (public key, survives renewal): sha256/${t.pins.spkiSha256}\n` +
        `  certificate SHA-256 fingerprint:    ${t.pins.fingerprint256}\n`,
    );
  }
  if (ts.mode !== 'off') {
    const who = ts.allowUsers.length ? ts.allowUsers.join(', ') : 'nobody (a tagged node has no owner; set [tailscale] allow_users)';
    ctx.stderr.write(
      ts.mode === 'funnel'
        ? `Tailscale Funnel: ${ts.url} (public internet: visitors need the token; tailnet users without it: ${who})\n`
        : `Tailscale Serve: ${ts.url} (tailnet only; without a token: ${who})\n`,
    );
  }
  return {
    running,
    async stop() {
      await running.close();
      if (json) ctx.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
    },
  };
}
