// A real ACME CA for tests: Let's Encrypt's pebble (Debian package `pebble`) with
// pebble-challtestsrv as its DNS server, both on 127.0.0.1 only. challtestsrv answers every
// A query with 127.0.0.1 (and no AAAA), so pebble's http-01 validation of any name reaches
// the test's own challenge server on 127.0.0.1:<httpPort>.
//
// pebble and challtestsrv take their ports from a config file or flags, not a listening
// socket we could hand over, so the ports are picked free and then bound by the child: that
// race is unavoidable here; a start that loses it (the child exits) is retried on new ports.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate } from '../../src/tls/x509.js';
import { findExecutable } from './peers.js';

export interface Pebble {
  /** https://127.0.0.1:<port>/dir */
  directoryUrl: string;
  /** The CA that signs pebble's own HTTPS certificate (pass as AcmeOptions.ca). */
  caPem: string;
  /** The root that signs the certificates pebble issues (fresh on every start). */
  rootPem(): Promise<string>;
  /** Everything pebble and challtestsrv printed, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Where pebble sends http-01 validation requests (the test's challenge server). */
  httpPort: number;
  /** Extra environment for pebble, e.g. { PEBBLE_WFE_NONCEREJECT: '50' }. */
  env?: Record<string, string>;
}

/** Why the pebble tests cannot run here, or undefined when they can. */
export function pebbleProblem(): string | undefined {
  if (!findExecutable('pebble')) return 'pebble not installed (Debian: pebble)';
  if (!findExecutable('pebble-challtestsrv')) return 'pebble-challtestsrv not installed (Debian: pebble)';
  return undefined;
}

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 15_000;
const POLL_MS = 50;
const MAX_LOG = 64 * 1024;

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnce(opts: PebbleOptions): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-pebble-'));
  const [dnsPort, challManagement, acmePort, managementPort, tlsPort] = (await freePorts(5)) as [number, number, number, number, number];
  const ca = createCertificate({ commonName: 'porthole pebble HTTPS CA', isCA: true });
  const server = createCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
  writeFileSync(join(dir, 'cert.pem'), server.certPem);
  writeFileSync(join(dir, 'key.pem'), server.keyPem, { mode: 0o600 });
  writeFileSync(
    join(dir, 'pebble-config.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: opts.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );

  let output = '';
  const collect = (child: ChildProcess) => {
    const add = (d: string) => {
      output = (output + d).slice(-MAX_LOG);
    };
    child.stdout!.setEncoding('utf8').on('data', add);
    child.stderr!.setEncoding('utf8').on('data', add);
  };
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // -defaultIPv6 '': no AAAA answers, so pebble dials 127.0.0.1, where the challenge server is.
    const chall = spawn(
      'pebble-challtestsrv',
      ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challManagement}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(chall);
    collect(chall);
    await waitReady(chall, () => httpAnswers(challManagement), () => output);

    const pebble = spawn('pebble', ['-config', join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: dir,
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', ...opts.env },
    });
    children.push(pebble);
    collect(pebble);
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    await waitReady(pebble, async () => (await httpsGet(directoryUrl, ca.certPem)).status === 200, () => output);
    return {
      directoryUrl,
      caPem: ca.certPem,
      async rootPem() {
        const res = await httpsGet(`https://127.0.0.1:${managementPort}/roots/0`, ca.certPem);
        if (res.status !== 200) throw new Error(`pebble /roots/0 answered ${res.status}`);
        return res.body;
      },
      log: () => output,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Ports the kernel just handed out on 127.0.0.1, released again for a child to bind. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Polls `probe` until it succeeds; fails at once if the child exits (e.g. port taken). */
async function waitReady(child: ChildProcess, probe: () => Promise<boolean>, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${child.spawnfile} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${child.spawnfile} not ready within ${READY_TIMEOUT_MS} ms:\n${output()}`);
}

function httpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** SIGTERM by PID, then SIGKILL if it lingers; resolves once it has exited. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
