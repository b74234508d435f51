// SSH tunnel: the command to run on the other machine, ready to copy. porthole cannot see
// whether someone uses it (a forwarded connection looks like any local client).
import { CopyField, ErrorLine, Notice } from '../ui';
import { methodOf, type TabProps, useStatus } from './common';

export function SshTab(_: TabProps) {
  const status = useStatus();
  const ssh = methodOf(status.data?.exposure, 'ssh');
  const port = typeof ssh?.['remotePort'] === 'number' ? ssh['remotePort'] : undefined;
  const command = typeof ssh?.['command'] === 'string' ? ssh['command'] : undefined;
  return (
    <div>
      <ErrorLine error={status.error} />
      <p>
        An SSH tunnel needs nothing on this desk but an SSH server: the other machine forwards a local port here, and the console and app are
        then at <code>http://127.0.0.1:{port ?? 'PORT'}</code> over the encrypted SSH connection.
      </p>
      {command && <CopyField label="On the other machine (plain ssh)" value={command} testId="ssh-command" />}
      {port !== undefined && (
        <CopyField label="Or with porthole installed there" value={`porthole ssh-tunnel --target you@this-desk --remote-port ${port} --run`} />
      )}
      {ssh && <p class="hint">{ssh.detail}</p>}
      <Notice>
        Replace <code>you@…</code> with your SSH login for this desk. On a shared host, turn the loopback exemption off (
        <code>auth.loopback_exempt = false</code>): every local user could otherwise use the forwarded port.
      </Notice>
    </div>
  );
}
