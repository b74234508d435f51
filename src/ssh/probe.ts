// Finding the OpenSSH client, asking it for its effective settings (`ssh -G`, which reads
// the config but connects nowhere), and naming why an ssh run failed from its stderr.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { PortholeError, type ErrorCode } from '../errors.js';

/** Absolute path of `ssh` on PATH; SSH_NOT_INSTALLED when there is none. */
export function findSsh(env: Record<string, string | undefined>): string {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue; // a relative PATH entry would run whatever is in the cwd
    for (const name of process.platform === 'win32' ? ['ssh.exe'] : ['ssh']) {
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {}
    }
  }
  throw new PortholeError(
    'SSH_NOT_INSTALLED',
    'no `ssh` on PATH: install the OpenSSH client (Debian/Ubuntu: apt install openssh-client; macOS and Windows 10+ ship it)',
  );
}

/** The `ciphers` line of `ssh -G` for this destination, or undefined if ssh cannot say. */
export function effectiveCiphers(ssh: string, target: string, configFile: string | undefined, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      ssh,
      [...(configFile ? ['-F', configFile] : []), '-G', '--', target],
      { env, timeout: 5_000, maxBuffer: 256 * 1024 },
      (err, stdout) => {
        if (err) return resolve(undefined);
        resolve(/^ciphers (\S+)$/m.exec(stdout)?.[1]);
      },
    );
  });
}

export interface SshFailure {
  code: ErrorCode;
  message: string;
  /** Retrying without a change (a key, known_hosts, the port) cannot help. */
  permanent: boolean;
}

/** The last meaningful stderr line, for messages (never contains porthole's secrets: none are given to ssh). */
export function lastLine(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  return lines.at(-1)?.slice(0, 300) ?? '';
}

/** Names why ssh ended (exit code 255 and its stderr) before or while forwarding. */
export function classifySshExit(target: string, code: number | null, stderr: string): SshFailure {
  const said = lastLine(stderr);
  const tail = said ? `: ${said}` : '';
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key .* (?:is not known|has changed)|No .* host key is known/i.test(stderr)) {
    return {
      code: 'SSH_HOST_KEY_UNVERIFIED',
      message: `ssh could not verify the host key of ${target}${tail}. Connect once with \`ssh ${target}\` and check the fingerprint (porthole never accepts unknown or changed host keys)`,
      permanent: true,
    };
  }
  if (/Permission denied|Too many authentication failures|no matching (?:host key type|key exchange|cipher)/i.test(stderr)) {
    return {
      code: 'SSH_AUTH_FAILED',
      message: `ssh could not log in to ${target}${tail}. porthole runs ssh without prompts (BatchMode): use a key loaded in ssh-agent or one without a passphrase`,
      permanent: true,
    };
  }
  if (/Could not request local forwarding|cannot listen to port|Address already in use|unix_listener/i.test(stderr)) {
    return {
      code: 'SSH_FORWARD_FAILED',
      message: `ssh could not open the local end of the forward${tail}. Choose another --local-port, or stop what uses it`,
      permanent: true,
    };
  }
  return {
    code: 'SSH_UNREACHABLE',
    message: `ssh to ${target} ${code === null ? 'was killed' : `exited with code ${code}`}${tail}`,
    permanent: false,
  };
}
