// `porthole demo` (what `npm start` runs): the embedded gateway — createGateway() mounted
// in a node:http server, the way an app uses the library — in front of the demo app.
import { createDemoApp } from '../demo/app.js';
import { listenControlSocket } from '../gateway/control-socket.js';
import { createGateway } from '../gateway/gateway.js';
import { listenGateway } from '../gateway/listen.js';
import { chooseConnectUrl, isRemoteBind } from '../gateway/connect-url.js';
import { resolveHome } from '../secrets/paths.js';
import { startDemoTunnel } from '../demo/tunnel.js';
import { selfCommand, shellJoin, shellQuote } from '../util/shell.js';
import { renderBanner } from './banner.js';
import type { CliContext } from './context.js';

export async function demoCommand(ctx: CliContext, opts: { host?: string; port?: string; json?: boolean; tunnel?: boolean }) {
  const app = createDemoApp();
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port === undefined ? 7070 : Number(opts.port);
  // The demo keeps its own state (and token) apart from a real gateway's, unless told.
  const stateDir = ctx.env['PORTHOLE_HOME'] || resolveHome({ appName: 'porthole-demo', env: ctx.env });
  const gateway = createGateway({
    stateDir,
    app: app.handleRequest,
    onUpgrade: app.handleUpgrade,
    // The flag as typed: the config check then quotes it back ("got \"abc\"").
    settings: { host, port: opts.port ?? port },
    controlSocket: false, // its own below, with the demo tunnel's routes
  });
  const listening = await listenGateway(gateway, { host, port });
  const remoteAccess = isRemoteBind(host);
  const connect = remoteAccess ? chooseConnectUrl(host, listening.port, []) : undefined;
  const demoTunnel = opts.tunnel === false ? undefined : await startDemoTunnel(gateway);
  const socket = await listenControlSocket({
    gateway,
    tunnel: demoTunnel?.tunnel,
    describe: () => ({
      url: listening.url,
      host: listening.host,
      port: listening.port,
      remoteAccess,
      connectUrl: connect?.url ?? null,
      tunnel: demoTunnel?.tunnel.status() ?? null,
    }),
  });
  const link = `${connect?.url ?? listening.url}/?code=${gateway.issueCode().code}`;
  const generatedToken = gateway.tokenInfo.generated ? gateway.revealToken() : undefined;
  if (opts.json) {
    ctx.stdout.write(
      `${JSON.stringify({ event: 'listening', url: listening.url, host: listening.host, port: listening.port, link, remoteAccess })}\n`,
    );
  }
  ctx.stderr.write(
    renderBanner({
      url: listening.url,
      target: 'built-in demo app (page, SSE clock at /events, WebSocket echo at /ws)',
      remoteAccess,
      connectUrl: connect?.url,
      link,
      generatedToken,
      tokenSource: gateway.tokenInfo.describe,
      insecureNoAuth: false,
      loopbackExempt: gateway.config.auth.loopback_exempt,
      socketPath: socket.path,
      alwaysShowLink: true,
    }),
  );
  demoTunnel?.tunnel.on('state', (s) => {
    if (s.state !== 'online') return;
    const u = new URL(s.url);
    const curl =
      `curl --cacert ${shellQuote(demoTunnel.caFile)} --resolve ${u.hostname}:${u.port}:127.0.0.1 ` +
      `-H "Authorization: Bearer $(PORTHOLE_HOME=${shellQuote(gateway.paths.home)} ${shellJoin([...selfCommand(), 'token', 'show'])})" ${s.url}/api/whoami`;
    if (opts.json) ctx.stdout.write(`${JSON.stringify({ event: 'tunnel', ...s, caFile: demoTunnel.caFile, curl })}\n`);
    ctx.stderr.write(
      `\nRelay tunnel (an embedded relay on loopback, a throwaway CA): the desk is online at\n  ${s.url}\n` +
        `Reach the app through the relay, as a visitor on the internet would:\n  ${curl}\n`,
    );
  });
  return {
    async stop() {
      await demoTunnel?.close();
      app.close();
      await socket.close();
      await listening.close();
      await gateway.close();
    },
  };
}
