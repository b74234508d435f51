// The porthole command line. Only this file may exit the process or handle signals;
// each command is a function of (context, options) → exit code.
import { Command, CommanderError, Option } from 'commander';
import { configCheckCommand } from './config-check.js';
import { reportError, type CliContext } from './context.js';
import { demoCommand } from './demo.js';
import { serveCommand } from './serve.js';
import { pairCommand, statusCommand } from './status.js';
import { initCommand, tokenRotate, tokenShow } from './token.js';
import { relayCommand } from './relay.js';
import { tunnelCommand, tunnelSecretSet } from './tunnel.js';
import { VERSION } from '../gateway/gateway.js';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/**
 * Starts a long-running command and runs it until SIGINT/SIGTERM. The handlers go in
 * before the command starts: a signal that arrives while it is still starting (right
 * after it printed that it listens) stops it cleanly instead of killing it.
 */
function runUntilSignal(start: () => Promise<{ stop(): Promise<void> }>): Promise<number> {
  return new Promise((resolve, reject) => {
    let signalled = false;
    let handle: { stop(): Promise<void> } | undefined;
    const finish = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      handle!.stop().then(
        () => resolve(0),
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
    .addOption(new Option('--auth-mode <mode>', 'authentication mode').choices(['token', 'password', 'trusted-proxy']))
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
      };
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
    .description('create the gateway token (stored 0600 in $PORTHOLE_HOME/secrets)')
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

  const config = program.command('config').description('configuration');
  config
    .command('check')
    .description('validate the configuration without starting; show where each value comes from')
    .option('--json', 'print as JSON')
    .option('--config <file>', 'config file (default $PORTHOLE_HOME/porthole.toml)')
    .action((o) => done(configCheckCommand(ctx, o)));

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
    .option('--json', 'print lifecycle events as JSON lines on stdout')
    .action(async (o) => {
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

  program
    .command('status')
    .description('state of the running gateway (over its Unix socket)')
    .option('--json', 'print as JSON')
    .action(async (o) => done(await statusCommand(ctx, o)));

  program
    .command('pair')
    .description('print a one-time link (and QR) that signs a browser in')
    .option('--json', 'print as JSON')
    .addOption(new Option('--scope <scope>', 'scope of the session it creates').choices(['admin', 'read']).default('admin'))
    .action(async (o) => done(await pairCommand(ctx, o)));

  return program;
}

export async function main(argv: string[]): Promise<void> {
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
