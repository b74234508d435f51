// `porthole relay --domain D [--listen H:P] [--cert F --key F] [--store DIR] [--production]`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import { startRelay, type Relay } from '../relay/server.js';
import { readSecretFile } from '../util/fs.js';
import { parseHostPort } from '../util/host-port.js';
import { homePaths, type CliContext } from './context.js';

export interface RelayFlags {
  domain: string;
  listen?: string;
  cert?: string;
  key?: string;
  store?: string;
  mode?: string;
  production?: boolean;
  secretFile?: string;
  httpListen?: string;
  json?: boolean;
}


export async function relayCommand(ctx: CliContext, f: RelayFlags): Promise<{ relay: Relay; stop(): Promise<void> }> {
  if (!f.cert || !f.key) {
    throw new PortholeError('INVALID_ARGUMENT', `--cert and --key are required: a certificate for the relay's own name (${f.domain})`);
  }
  const { host, port } = parseHostPort(f.listen ?? '127.0.0.1:7443', '--listen', true);
  const keyPem = readSecretFile(f.key);
  if (keyPem === undefined) throw new PortholeError('SECRET_FILE_UNREADABLE', `key file ${f.key} does not exist`);
  let secret = ctx.env['PORTHOLE_RELAY_REGISTRATION_SECRET'] || undefined;
  if (f.secretFile) {
    secret = readSecretFile(f.secretFile);
    if (secret === undefined) throw new PortholeError('SECRET_FILE_UNREADABLE', `secret file ${f.secretFile} does not exist`);
  }
  const relay = await startRelay({
    domain: f.domain,
    host,
    port,
    ...(f.httpListen ? { http: parseHostPort(f.httpListen, '--http-listen', true) } : {}),
    certPem: readFileSync(f.cert, 'utf8'),
    keyPem,
    registrationSecret: secret,
    production: f.production,
    mode: f.mode === 'terminate' ? 'terminate' : 'passthrough',
    storeDir: f.store ?? join(homePaths(ctx).home, 'relay'),
  });
  const url = `https://${f.domain}:${relay.port}`;
  const mode = f.mode === 'terminate' ? 'terminate' : 'passthrough';
  if (f.json) {
    ctx.stdout.write(`${JSON.stringify({ event: 'listening', url, host: relay.host, port: relay.port, mode, httpPort: relay.httpPort ?? null })}\n`);
  }
  ctx.stderr.write(
    `porthole relay ${url} for *.${f.domain}, listening on ${relay.host}:${relay.port} ` +
      (mode === 'passthrough'
        ? "(passthrough: visitors' TLS goes to the desks untouched)\n"
        : '(terminate: this relay decrypts visitor traffic and can read it)\n') +
      (secret === undefined ? 'WARNING: using the dev registration secret (loopback only).\n' : ''),
  );
  relay.on('desk', (d: { name: string; url: string }) => {
    if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'desk-online', ...d })}\n`);
  });
  relay.on('desk-offline', (d: { name: string }) => {
    if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'desk-offline', ...d })}\n`);
  });
  return {
    relay,
    async stop() {
      await relay.close();
      if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
    },
  };
}
