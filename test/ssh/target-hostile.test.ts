// An SSH target whose user part carries shell syntax. OpenSSH before 9.6 (CVE-2023-51385;
// Debian 12 ships 9.2) expands %r (and %u, %h…) into ProxyCommand/LocalCommand/Match exec
// without quoting, and those run through /bin/sh: a porthole.toml from somewhere else
// (`[remote] ssh_target`) or a pasted --target would run a command on this machine. porthole
// refuses the characters OpenSSH 9.6 itself refuses in a user name. Real ssh, real CLI.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkSshDestination } from '../../src/ssh/target.js';
import { runCli, tempHome } from '../helpers/cli.js';
import { cliCode } from '../helpers/e2e.js';
import { skipUnlessExecutable } from '../helpers/peers.js';

describe('shell syntax in the SSH user', { skip: skipUnlessExecutable('ssh') }, () => {
  let h: { home: string; cleanup(): void };
  before(() => {
    h = tempHome();
  });
  after(() => h.cleanup());

  it('refused before ssh runs: no command from the target is executed via ProxyCommand %r', async () => {
    const mark = join(h.home, 'pwned');
    const sshConfig = join(h.home, 'ssh_config');
    // A common pattern (jump hosts, wrappers): the remote user handed to a command.
    writeFileSync(sshConfig, 'Host *\n  ProxyCommand /bin/echo %r\n  BatchMode yes\n');
    // No "/" or space needed: the path comes from the environment ssh passes on.
    const target = 'x$(touch$IFS$PH_MARK)@desk.example';
    writeFileSync(
      join(h.home, 'porthole.toml'),
      `[remote]\ntransport = "ssh"\nssh_target = ${JSON.stringify(target)}\n`,
    );
    const r = await runCli(['status'], { PORTHOLE_HOME: h.home, PORTHOLE_TOKEN: `ph_${'a'.repeat(43)}`, PORTHOLE_SSH_CONFIG: sshConfig, PH_MARK: mark }, 20_000);
    assert.equal(existsSync(mark), false, 'the command in the target ran');
    assert.notEqual(r.code, 0);
    assert.match(cliCode(r.stderr) ?? '', /^(SSH_TARGET_INVALID|CONFIG_INVALID)$/, r.stderr);
  });

  for (const bad of ['a`id`@h', "a'b@h", 'a"b@h', 'a;b@h', 'a|b@h', 'a&b@h', 'a<b@h', 'a>b@h', 'a(b)@h', 'a{b}@h', 'a\\b@h', 'ssh://a$b@h']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => checkSshDestination(bad), (e: { code?: string }) => e.code === 'SSH_TARGET_INVALID');
    });
  }

  it('ordinary users still pass', () => {
    for (const ok of ['me@desk', 'first.last@desk.example.com', 'a_b-c+d@10.0.0.2', 'ssh://me@[::1]:2222', 'desk']) {
      assert.equal(checkSshDestination(ok), ok);
    }
  });
});
