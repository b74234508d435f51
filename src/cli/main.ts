// The porthole command line. Only this file may exit the process or handle signals;
// each command is a function of (context, options) → exit code.
import { Argument, Command, CommanderError, Option } from 'commander';
import { configCheckCommand } from './config-check.js';
import { callCommand } from './call.js';
import { reportError, type CliContext } from './context.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { serveCommand } from './serve.js';
import { pairCommand, statusCommand } from './status.js';
import { devicesApprove, devicesList, devicesRevoke } from './devices.js';
import { proxyConfigCommand, proxyTestCommand } from './proxy.js';
import { lanAddressesCommand } from './lan.js';
import { initCommand, tokenRotate, tokenShow } from './token.js';
import { passwordClear, passwordSet } from './password.js';
import { secretsMigrate, secretsStatus } from './secrets.js';
import { relayCommand } from './relay.js';
import { sshTunnelPrint, sshTunnelRun } from './ssh-tunnel.js';
import { tunnelCommand, tunnelSecretSet } from './tunnel.js';
import { tailscaleCommand } from './tailscale.js';
import { tuneGcForStreaming } from '../tunnel/gc-tuning.js';
import { VERSION } from '../gateway/gateway.js';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/**
 * Starts a long-running command and runs it until SIGINT/SIGTERM. The handlers go in
 * before the command starts: a signal that arrives while it is still starting (right
 * after it printed that it listens) stops it cleanly instead of killing it. A command
 * that can end by itself (`ssh-tunnel --run` giving up) resolves `done` with its exit code.
 */
function runUntilSignal(start: () => Promise<{ stop(): Promise<void>; done?: Promise<number> }>): Promise<number> {
  return new Promise((resolve, reject) => {
    let signalled = false;
    let handle: { stop(): Promise<void>; done?: Promise<number> } | undefined;
    const finish = (code = 0) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      handle!.stop().then(
        () => resolve(code),
        () => resolve(1),
      );
    };
    const onSignal = () => {
      if (signalled) return;
      signalled = true;
      if (handle) finish();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    start().then(
      (h) => {
        handle = h;
        if (signalled) finish();
        void h.done?.then((code) => {
          if (signalled) return;
          signalled = true;
          finish(code);
        });
      },
      (err) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        reject(err);
      },
    );
  });
}

export function buildProgram(ctx: CliContext, done: (code: number | Promise<number>) => void): Command {
  const program = new Command('porthole')
    .description('Secure remote access for local-first apps')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) });

  program
    .command('serve')
    .description('run the gateway in front of an app (sidecar reverse proxy)')
    .option('--target <url>', 'the app: PORT, HOST:PORT, http(s)://HOST:PORT[/base] or unix:/path.sock')
    .option('--host <host>', 'address to bind (default 127.0.0.1; 0.0.0.0 or a LAN address for remote access)')
    .option('--port <port>', 'port to bind (default 7070; 0 picks a free one)')
    .option('--config <file>', 'config file (default $PORTHOLE_HOME/porthole.toml)')
    .option('--json', 'print lifecycle events as JSON lines on stdout (banner goes to stderr)')
    // No .choices() on flags that are config keys: the config layer checks them with every
    // other problem of the file, environment and flags, and reports them together.
    .option('--auth-mode <mode>', 'authentication mode: token, password or trusted-proxy')
    .option('--insecure-no-auth', 'DISABLE authentication: anyone who reaches the port uses the app')
    .option('--auth-token-file <file>', 'read the gateway token from this file (mode 0600)')
    .option('--auth-token <token>', 'use this gateway token (visible to other local users in the process list: prefer --auth-token-file or PORTHOLE_AUTH_TOKEN)')
    .option('--no-loopback-exempt', 'require a credential from loopback clients too')
    .option('--allowed-origins <list>', 'comma-separated origins or bare hosts allowed to make cross-origin requests', list)
    .option('--public-url <url>', 'the public URL a reverse proxy serves this gateway at')
    .option('--trusted-proxies <list>', 'comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed', list)
    .option('--tunnel', 'also start the public relay tunnel (needs consent once: `porthole tunnel start --accept-risk`)')
    .option('--relay <host:port>', 'the relay to dial for the tunnel')
    .option('--subdomain <name>', 'ask the relay for this name (default: the name this desk holds, else a random one)')
    .option('--tailscale <mode>', 'expose through Tailscale: off, serve (your tailnet) or funnel (the internet)')
    .option('--tailscale-reset-on-exit', "remove porthole's Tailscale mapping when the gateway stops")
    .option('--tls <mode>', 'off, or self-signed: serve HTTPS (TLS 1.3) with a certificate made once in $PORTHOLE_HOME/tls')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', 'private key (PEM, mode 0600) for --tls-cert')
    .action(async (o) => {
      const flags = {
        target: o.target,
        host: o.host,
        port: o.port,
        config: o.config,
        json: o.json,
        authMode: o.authMode,
        insecureNoAuth: o.insecureNoAuth,
        authTokenFile: o.authTokenFile,
        authToken: o.authToken,
        // commander sets loopbackExempt=true by default for --no-*; only an explicit false is a flag.
        loopbackExempt: o.loopbackExempt === false ? false : undefined,
        allowedOrigins: o.allowedOrigins,
        publicUrl: o.publicUrl,
        trustedProxies: o.trustedProxies,
        tunnel: o.tunnel,
        relay: o.relay,
        subdomain: o.subdomain,
        tailscale: o.tailscale,
        tailscaleResetOnExit: o.tailscaleResetOnExit,
        tls: o.tls,
        tlsCert: o.tlsCert,
        tlsKey: o.tlsKey,
      };
      // Process-wide GC settings for a process that streams bulk bytes (src/tunnel/gc-tuning.ts).
      tuneGcForStreaming();
      done(runUntilSignal(() => serveCommand(ctx, flags)));
    });

  program
    .command('demo')
    .description('run the built-in demo app behind an embedded gateway (what `npm start` does)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to bind (0 picks a free one)', '7070')
    .option('--json', 'print the listening event as JSON on stdout')
    .option('--no-tunnel', 'skip the embedded relay and tunnel')
    .action(async (o) => {
      done(runUntilSignal(() => demoCommand(ctx, o)));
    });

  program
    .command('init')
    .description('create the gateway token (in a persistent OS keyring, else 0600 in $PORTHOLE_HOME/secrets)')
    .option('--rotate-token', 'replace the token (same as `porthole token rotate`)')
    .action(async (o) => done(await initCommand(ctx, o)));

  const token = program.command('token').description('show or rotate the gateway token');
  token
    .command('show')
    .description('print the token (only the token, on stdout)')
    .action(() => done(tokenShow(ctx)));
  token
    .command('rotate')
    .description('issue a new token; a running gateway applies it at once')
    .action(async () => done(await tokenRotate(ctx)));

  const secrets = program.command('secrets').description('where this home keeps its secrets: the OS keyring or 0600 files');
  secrets
    .command('status')
    .description('show the secret store in use and whether a persistent keyring is available')
    .option('--json', 'print JSON')
    .action((o) => done(secretsStatus(ctx, o)));
  secrets
    .command('migrate')
    .description('move every secret to another store (stop the gateway first)')
    .addOption(new Option('--to <store>', 'the store to move to').choices(['file', 'keyring']).makeOptionMandatory())
    .action((o) => done(secretsMigrate(ctx, o)));

  const password = program.command('password').description('the login password for auth.mode = "password" (stored as a scrypt hash)');
  password
    .command('set')
    .description('set it, read from stdin or a no-echo prompt (never from argv); ends sessions of the old one')
    .action(async () => done(await passwordSet(ctx, process.stdin)));
  password
    .command('clear')
    .description('remove it; ends every password session')
    .action(async () => done(await passwordClear(ctx)));

  const config = program.command('config').description('configuration');
  config
    .command('check')
    .description('validate the configuration without starting; show where each value comes from')
    .option('--json', 'print as JSON')
    .option('--config <file>', 'config file (default $PORTHOLE_HOME/porthole.toml)')
    .action((o) => done(configCheckCommand(ctx, o)));

  program
    .command('doctor')
    .description('check the state directory, config, token, gateway, port, target, certificates and relay; exit 1 if any check fails')
    .option('--json', 'print as JSON')
    .option('--config <file>', 'config file (default $PORTHOLE_HOME/porthole.toml)')
    .action(async (o) => done(await doctorCommand(ctx, o)));

  program
    .command('relay')
    .description('run a relay: desks dial out to it, visitors reach them at <name>.<domain>')
    .requiredOption('--domain <domain>', 'tunnel domain: desks get <name>.<domain>')
    .option('--listen <host:port>', 'TLS listener for desks and visitors', '127.0.0.1:7443')
    .option('--cert <file>', "certificate (PEM) for the relay's own name, the domain apex")
    .option('--key <file>', 'its private key (PEM, mode 0600)')
    .option('--store <dir>', 'registry directory (default $PORTHOLE_HOME/relay)')
    .addOption(new Option('--mode <mode>', 'passthrough: the relay sees ciphertext only').choices(['passthrough', 'terminate']).default('passthrough'))
    .option('--secret-file <file>', 'registration secret file (else PORTHOLE_RELAY_REGISTRATION_SECRET; the dev default only on loopback)')
    .option('--production', 'refuse the dev default secret everywhere')
    .option('--http-listen <host:port>', 'plain-HTTP listener: redirects to https, passes ACME HTTP-01 challenges to desks')
    .option('--acme', "instead of --cert/--key: obtain the relay's certificate by ACME (HTTP-01 on --http-listen; passthrough only)")
    .option('--acme-directory <url>', "ACME directory (https; default Let's Encrypt)")
    .option('--acme-ca <file>', "CA certificate (PEM) for the ACME server's HTTPS (private CAs)")
    .option('--acme-email <address>', 'contact address given to the ACME CA')
    .option('--max-desks <n>', 'desks online at once (default 1000)')
    .option('--max-streams-per-desk <n>', 'concurrent visitor streams per desk; more are refused (default 512)')
    .option('--max-streams-per-address <n>', 'concurrent visitor streams per desk from one address (IPv6: one /64); more are refused (default 256)')
    .option('--registrations-per-minute <n>', 'registration attempts per source address per minute (default 10)')
    .option('--client-hello-timeout <seconds>', 'time a new connection has to send its TLS ClientHello (default 10)')
    .option('--visitor-idle-timeout <seconds>', 'close a visitor connection idle both ways this long (default 600)')
    .option('--json', 'print lifecycle events as JSON lines on stdout')
    .action(async (o) => {
      tuneGcForStreaming();
      done(runUntilSignal(() => relayCommand(ctx, o)));
    });

  const tunnel = program.command('tunnel').description('the public relay tunnel of the running gateway');
  tunnel
    .command('start')
    .description('start the tunnel (the first time needs --accept-risk)')
    .option('--accept-risk', 'consent to exposing this desk on the public internet through the relay')
    .option('--json', 'print as JSON')
    .action(async (o) => done(await tunnelCommand(ctx, 'start', o)));
  for (const [name, what] of [
    ['stop', 'stop the tunnel'],
    ['status', 'state of the tunnel'],
    ['release', "free this desk's name on the relay (held back before anyone else may take it)"],
  ] as const) {
    tunnel
      .command(name)
      .description(what)
      .option('--json', 'print as JSON')
      .action(async (o) => done(await tunnelCommand(ctx, name, o)));
  }
  tunnel
    .command('secret')
    .description('the registration secret the desk proves to the relay')
    .command('set')
    .description('store the registration secret, read from stdin (never from argv)')
    .action(async () => done(await tunnelSecretSet(ctx, process.stdin)));

  const tailscale = program.command('tailscale').description('Tailscale Serve / Funnel of the running gateway (docs/tailscale.md)');
  for (const [name, what] of [
    ['status', "what tailscale says, and porthole's mapping (works without a running gateway)"],
    ['serve', 'map https://<this node>/ to the gateway, for your tailnet only'],
    ['funnel', 'map https://<this node>/ to the gateway on the public internet (visitors need the token)'],
    ['reset', "remove porthole's mapping, and only it (works without a running gateway)"],
  ] as const) {
    tailscale
      .command(name)
      .description(what)
      .option('--json', 'print as JSON')
      .action(async (o) => done(await tailscaleCommand(ctx, name, o)));
  }

  program
    .command('status')
    .description('state of the running gateway (over its Unix socket; remote mode: [remote] or PORTHOLE_URL + PORTHOLE_TOKEN)')
    .option('--json', 'print as JSON')
    .action(async (o) => done(await statusCommand(ctx, o)));

  program
    .command('call')
    .description('call a control-plane method and print its result (remote mode: PORTHOLE_URL + PORTHOLE_TOKEN or [remote])')
    .argument('<method>', 'method name, e.g. health, status, token.rotate')
    .argument('[json]', 'parameters as JSON')
    .option('--pin <pin>', 'TLS pin of the gateway: sha256/<base64> (public key) or AA:BB:… (certificate SHA-256)')
    .option('--timeout <seconds>', 'time to wait for the answer (default 30)')
    .action(async (method: string, json: string | undefined, o) => done(await callCommand(ctx, method, json, o)));

  program
    .command('ssh-tunnel')
    .description("print the ssh command that reaches the desk's gateway from this machine, or keep one running (docs/ssh.md)")
    .option('--target <user@host>', 'the desk, as ssh knows it (default: [remote] ssh_target)')
    .option('--local-port <port>', 'port on 127.0.0.1 here (default: the remote port)')
    .option('--remote-port <port>', "the gateway's port on the desk (default: gateway.port, 7070)")
    .option('--run', 'run and keep the tunnel alive (reconnecting with back-off) until stopped')
    .option('--ssh-config <file>', "ssh config file for ssh's -F (default: PORTHOLE_SSH_CONFIG, else ssh's own)")
    .option('--config <file>', 'porthole.toml to read defaults from')
    .option('--json', 'print as JSON (with --run: one {"event":"ssh-tunnel","state":…} line per change)')
    .action(async (o) => {
      if (o.run) done(runUntilSignal(() => sshTunnelRun(ctx, o)));
      else done(sshTunnelPrint(ctx, o));
    });

  program
    .command('lan')
    .description('local-network access')
    .command('addresses')
    .description('the LAN URLs a phone on the same network could use (IPv4 first, then IPv6)')
    .option('--port <port>', 'port to show (default: the configured gateway.port)')
    .option('--config <file>', 'porthole.toml to read')
    .option('--json', 'print as JSON')
    .action((o) => done(lanAddressesCommand(ctx, o)));

  program
    .command('pair')
    .description('pair a phone or another device: a pairing link (and QR) plus a short code to type (docs/pairing.md)')
    .option('--json', 'print as JSON')
    .addOption(new Option('--scope <scope>', 'what the device may do: admin, or read (GET/HEAD only)').choices(['admin', 'read']).default('admin'))
    .option('--expires <ttl>', 'how long the device stays paired: e.g. 30d, 12h, or never (default 90d for admin, 365d for read)')
    .option('--require-approval', 'the device waits until approved (porthole devices approve ID)')
    .action(async (o) => done(await pairCommand(ctx, o)));

  const devices = program.command('devices').description('paired devices of the running gateway (docs/pairing.md)');
  devices
    .command('list')
    .description('list paired devices')
    .option('--json', 'print as JSON')
    .action(async (o) => done(await devicesList(ctx, o)));
  devices
    .command('revoke')
    .description('revoke a device: its sessions end and its connections close at once')
    .argument('<id>', 'device id (porthole devices list)')
    .option('--json', 'print as JSON')
    .action(async (id: string, o) => done(await devicesRevoke(ctx, id, o)));
  devices
    .command('approve')
    .description('approve a device paired with --require-approval')
    .argument('<id>', 'device id (porthole devices list)')
    .option('--json', 'print as JSON')
    .action(async (id: string, o) => done(await devicesApprove(ctx, id, o)));

  program
    .command('proxy-config')
    .description('print a Caddy or nginx config that serves this gateway at your own domain (docs/reverse-proxy.md)')
    .addArgument(new Argument('<proxy>', 'which proxy').choices(['caddy', 'nginx']))
    .option('--public-url <url>', 'the URL visitors use (default: gateway.public_url)')
    .option('--upstream <host:port>', "the gateway's address (default: gateway.host:gateway.port; a wildcard bind → loopback)")
    .option('--listen <[host:]port>', "where the proxy listens (default: the public URL's port on every address)")
    .option('--cert <file>', 'certificate (PEM) for the public name (default: Caddy obtains one; nginx gets paths to fill in)')
    .option('--key <file>', 'its private key (PEM)')
    .option('--no-http-redirect', 'no port-80 redirect to https')
    .option('--caddy-admin <addr|off>', "Caddy's admin endpoint (default: Caddy's own, localhost:2019)")
    .option('--config <file>', 'porthole.toml to read defaults from')
    .action((kind: string, o) => done(proxyConfigCommand(ctx, kind, o)));

  program
    .command('proxy')
    .description('the reverse proxy in front of this gateway')
    .command('test')
    .description("check that porthole answers at URL/_porthole/ping; name the failure if not")
    .argument('[url]', 'the public URL (default: gateway.public_url)')
    .option('--ca <file>', 'also trust this CA certificate (PEM): a private CA')
    .option('--timeout <seconds>', 'give up after this long (default 10)')
    .option('--connect <ip>', "dial this address instead of the name's DNS answer (test before DNS points here)")
    .option('--config <file>', 'porthole.toml to read gateway.public_url from')
    .option('--json', 'print the result as JSON')
    .action(async (url: string | undefined, o) => done(await proxyTestCommand(ctx, url, o)));

  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `porthole status | head -1`: a reader that leaves is not an error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const ctx: CliContext = { env: process.env, stdout: process.stdout, stderr: process.stderr };
  let result: number | Promise<number> = 0;
  const program = buildProgram(ctx, (c) => {
    result = c;
  });
  try {
    await program.parseAsync(argv);
    process.exitCode = await result;
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(ctx, err);
  }
}
