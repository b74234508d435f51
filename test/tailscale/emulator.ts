// The Tailscale emulator (test/tools/tailscale-emulator, vendored from the project's shared
// tools) for one test file: its own TS_EMU_STATE directory, its bin first on PATH, the
// proxy daemon it starts, and a teardown that stops the daemon (by PID) and deletes the state.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createTailscaleRunner, type TailscaleRunner } from '../../src/tailscale/cli.js';

export const EMULATOR_BIN = new URL('../tools/tailscale-emulator/bin', import.meta.url).pathname;

export interface Emulator {
  /** PATH with the emulator first, TS_EMU_STATE: give it to every process that runs `tailscale`. */
  env: Record<string, string>;
  state: string;
  /** Runs `tailscale ARGS` (the emulated CLI), with extra env. */
  tailscale(args: string[], env?: Record<string, string>): { code: number | null; stdout: string; stderr: string };
  /** Runs `tailscale-emulator ARGS` and asserts it succeeded. */
  admin(...args: string[]): string;
  /** A runner for porthole's own code, with extra env (TS_EMU_* knob overrides). */
  runner(env?: Record<string, string>): TailscaleRunner;
  /** The proxy daemon's port (starts it if needed). */
  daemonPort(): number;
  cleanup(): void;
}

export function createEmulator(): Emulator {
  const state = mkdtempSync(join(tmpdir(), 'ts-emu-'));
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TS_EMU_') && v !== undefined) base[k] = v;
  const env = { PATH: `${EMULATOR_BIN}${delimiter}${process.env['PATH'] ?? ''}`, TS_EMU_STATE: state };
  const run = (cmd: string, args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync(cmd, args, { env: { ...base, ...env, ...extra }, encoding: 'utf8', timeout: 20_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    env,
    state,
    tailscale: (args, extra) => run('tailscale', args, extra),
    admin(...args) {
      const r = run('tailscale-emulator', args);
      assert.equal(r.code, 0, `tailscale-emulator ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    runner: (extra = {}) => createTailscaleRunner({ env: { ...base, ...env, ...extra } }),
    daemonPort() {
      const r = run('tailscale-emulator', ['start']);
      assert.equal(r.code, 0, r.stderr);
      return Number(new URL(r.stdout.trim()).port);
    },
    cleanup() {
      run('tailscale-emulator', ['stop']);
      rmSync(state, { recursive: true, force: true });
    },
  };
}
