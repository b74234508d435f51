// The ssh command lines porthole prints and runs (src/ssh/command.ts), the destination
// grammar (src/ssh/target.ts) and how ssh failures are named (src/ssh/probe.ts): pure
// functions, table tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FORWARD_READY_MARKER,
  forwardArg,
  managedArgs,
  preferredCiphers,
  printedCommand,
  REMOTE_COMMAND,
} from '../../src/ssh/command.js';
import { classifySshExit } from '../../src/ssh/probe.js';
import { checkSshDestination } from '../../src/ssh/target.js';

const forward = { listen: { host: '127.0.0.1' as const, port: 8080 }, connectPort: 7070 };

/** Value of `-o Name=…` in argv, or undefined. */
function option(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] === '-o' && argv[i + 1]!.startsWith(`${name}=`)) return argv[i + 1]!.slice(name.length + 1);
  }
  return undefined;
}

describe('checkSshDestination', () => {
  for (const ok of ['desk', 'me@desk', 'me@desk.example.com', 'first.last@10.0.0.2', 'me@[::1]', 'ssh://me@desk:2222', 'ssh://desk', 'my_host']) {
    it(`accepts ${ok}`, () => assert.equal(checkSshDestination(ok), ok));
  }
  for (const bad of ['', '-oProxyCommand=touch /tmp/x', '-p', 'me@-desk x', 'me@desk -L', 'me@desk\n', 'a\u0007b', 'me@', '@desk', 'ssh://me@desk:99999', 'me@desk/path', 'me@desk;rm']) {
    it(`refuses ${JSON.stringify(bad)} with SSH_TARGET_INVALID`, () => {
      assert.throws(() => checkSshDestination(bad), (e: { code?: string }) => e.code === 'SSH_TARGET_INVALID');
    });
  }
});

describe('printedCommand', () => {
  it('is `ssh -N` with a loopback-bound -L, keep-alives, ExitOnForwardFailure, and -- before the host', () => {
    const argv = printedCommand({ target: 'me@desk', forward });
    assert.equal(argv[0], 'ssh');
    assert.ok(argv.includes('-N'));
    assert.equal(argv[argv.indexOf('-L') + 1], '127.0.0.1:8080:127.0.0.1:7070');
    assert.equal(option(argv, 'ExitOnForwardFailure'), 'yes');
    assert.equal(option(argv, 'ServerAliveInterval'), '15');
    assert.equal(option(argv, 'ServerAliveCountMax'), '3');
    assert.deepEqual(argv.slice(-2), ['--', 'me@desk']);
    assert.equal(option(argv, 'StrictHostKeyChecking'), undefined);
  });
  it('refuses a destination that looks like an option', () => {
    assert.throws(() => printedCommand({ target: '-oProxyCommand=x', forward }), (e: { code?: string }) => e.code === 'SSH_TARGET_INVALID');
  });
});

describe('managedArgs', () => {
  const base = { ssh: '/usr/bin/ssh', target: 'me@desk', forward };
  it('runs the harmless remote command after "--" and never prompts', () => {
    const argv = managedArgs({ ...base, session: 'command' });
    assert.deepEqual(argv.slice(-3), ['--', 'me@desk', REMOTE_COMMAND]);
    assert.ok(!argv.includes('-N'));
    assert.equal(option(argv, 'BatchMode'), 'yes');
    assert.equal(option(argv, 'ExitOnForwardFailure'), 'yes');
    assert.equal(option(argv, 'ControlPath'), 'none');
    assert.equal(option(argv, 'ForwardAgent'), 'no');
    assert.equal(option(argv, 'LocalCommand'), `echo ${FORWARD_READY_MARKER}`);
    assert.equal(option(argv, 'StrictHostKeyChecking'), undefined, 'host key checking is never touched');
    assert.equal(option(argv, 'UserKnownHostsFile'), undefined);
  });
  it('uses -N for keys restricted to forwarding, and passes the cipher preference and -F', () => {
    const argv = managedArgs({ ...base, session: 'forward-only', ciphers: 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com', configFile: '/x/cfg' });
    assert.ok(argv.includes('-N'));
    assert.deepEqual(argv.slice(-2), ['--', 'me@desk']);
    assert.equal(option(argv, 'Ciphers'), 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com');
    assert.deepEqual(argv.slice(0, 2), ['-F', '/x/cfg']);
  });
  it('binds a Unix-socket local end 0600 and replaces a stale socket', () => {
    const argv = managedArgs({ ...base, session: 'command', forward: { listen: { path: '/d/s.sock' }, connectHost: '::1', connectPort: 7070 } });
    assert.equal(argv[argv.indexOf('-L') + 1], '/d/s.sock:[::1]:7070');
    assert.equal(option(argv, 'StreamLocalBindMask'), '0177');
    assert.equal(option(argv, 'StreamLocalBindUnlink'), 'yes');
  });
});

describe('forwardArg / preferredCiphers', () => {
  it('formats -L', () => {
    assert.equal(forwardArg(forward), '127.0.0.1:8080:127.0.0.1:7070');
  });
  it('moves aes128-gcm first, keeps the user’s list otherwise', () => {
    assert.equal(preferredCiphers('chacha20-poly1305@openssh.com,aes128-ctr,aes128-gcm@openssh.com'), 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr');
    assert.equal(preferredCiphers('aes256-gcm@openssh.com'), undefined, 'a restricted list stays as configured');
    assert.equal(preferredCiphers('aes128-gcm@openssh.com,aes128-ctr'), undefined, 'already first');
    assert.equal(preferredCiphers(undefined), undefined);
  });
});

describe('classifySshExit', () => {
  const cases: [string, string, boolean][] = [
    ['Host key verification failed.', 'SSH_HOST_KEY_UNVERIFIED', true],
    ['@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@', 'SSH_HOST_KEY_UNVERIFIED', true],
    ['me@desk: Permission denied (publickey).', 'SSH_AUTH_FAILED', true],
    ['bind [127.0.0.1]:7070: Address already in use\nCould not request local forwarding.', 'SSH_FORWARD_FAILED', true],
    ['ssh: connect to host desk port 22: Connection refused', 'SSH_UNREACHABLE', false],
    ['ssh: Could not resolve hostname nowhere: Name or service not known', 'SSH_UNREACHABLE', false],
  ];
  for (const [stderr, code, permanent] of cases) {
    it(`${code} from ${JSON.stringify(stderr.split('\n')[0])}`, () => {
      const f = classifySshExit('me@desk', 255, stderr);
      assert.equal(f.code, code);
      assert.equal(f.permanent, permanent);
    });
  }
});
