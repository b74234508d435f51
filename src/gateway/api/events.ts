// Live updates for the console over the control plane (docs/control-plane.md):
//   tunnel.state      the tunnel status (GET /_porthole/api/tunnel without the secret), when the
//                     tunnel's state changes;
//   exposure.changed  the status `exposure` object (the remote-access overview), when the
//                     tunnel, Tailscale or the saved settings change.
// Published on changes, never on a timer. Bursts (connecting → online in a few ms, a stop
// followed by a start) are coalesced: the first change arms a short timer and the event
// then carries the state as it is at that moment; a payload equal to the last one sent is
// not sent again (except after a settings save, which the console re-reads).
import type { Gateway } from '../gateway.js';

export const COALESCE_MS = 100;

export interface ConsoleEvents {
  /** The tunnel's state changed. */
  tunnelChanged(): void;
  /** The exposure may have changed (Tailscale switched, settings saved); `force` sends even an unchanged overview. */
  exposureChanged(force?: boolean): void;
  close(): void;
}

export interface ConsoleEventsOptions {
  control: Gateway['control'];
  tunnelStatus?: () => unknown;
  exposure: () => Promise<unknown>;
  delayMs?: number;
  onError?: (err: unknown) => void;
}

export function createConsoleEvents(o: ConsoleEventsOptions): ConsoleEvents {
  const delay = o.delayMs ?? COALESCE_MS;
  let closed = false;
  if (o.tunnelStatus) o.control.event('tunnel.state');
  o.control.event('exposure.changed');

  function coalescer(send: (force: boolean) => Promise<void> | void): (force?: boolean) => void {
    let timer: NodeJS.Timeout | undefined;
    let force = false;
    let running: Promise<void> | undefined;
    const fire = () => {
      timer = undefined;
      const f = force;
      force = false;
      running = Promise.resolve()
        .then(() => (closed ? undefined : send(f)))
        .catch((err) => o.onError?.(err))
        .finally(() => {
          running = undefined;
        });
    };
    return (f = false) => {
      if (closed) return;
      force ||= f;
      if (timer) return;
      // One send at a time: a change during a send is picked up by the next one.
      timer = setTimeout(() => (running ? void running.then(fire) : fire()), delay);
      timer.unref();
    };
  }

  let lastTunnel: string | undefined;
  const tunnel = coalescer(() => {
    const payload = o.tunnelStatus?.();
    const text = JSON.stringify(payload);
    if (text === lastTunnel) return;
    lastTunnel = text;
    o.control.publish('tunnel.state', payload);
  });
  let lastExposure: string | undefined;
  const exposure = coalescer(async (force) => {
    const payload = await o.exposure();
    const text = JSON.stringify(payload);
    if (!force && text === lastExposure) return;
    lastExposure = text;
    if (!closed) o.control.publish('exposure.changed', payload);
  });
  return {
    tunnelChanged() {
      tunnel();
      exposure();
    },
    exposureChanged: (force = false) => exposure(force),
    close() {
      closed = true;
    },
  };
}
