// The OS keyring seam: what a keyring backend must offer (keyring-store.ts picks one per
// platform and builds the SecretStore on it). Only a keyring that persists across reboots may hold
// porthole's secrets (DESIGN §5): a forgotten token is an error, never regenerated.
import { PortholeError } from '../errors.js';

/** The outcome of asking a keyring whether porthole may use it now. */
export type KeyringProbe = { ok: true; where: string } | { ok: false; reason: string };

/**
 * One OS keyring. Secrets are addressed by (home, name): two porthole homes never share a
 * secret. Values cross process boundaries only through pipes, never argv or environment.
 * Every method is synchronous and bounded by a timeout, like the file store it replaces.
 */
export interface KeyringBackend {
  /** e.g. "Secret Service"; for messages. */
  readonly name: string;
  /** Recorded in state.json, e.g. "secret-service". */
  readonly id: string;
  /** Usable now, and persistent across reboots? Never throws; unclear → not ok. */
  probe(): KeyringProbe;
  /** undefined when absent. Throws KEYRING_UNAVAILABLE when the keyring cannot answer. */
  get(home: string, name: string): string | undefined;
  set(home: string, name: string, value: string): void;
  /** Absent is fine. */
  delete(home: string, name: string): void;
  /** Names of the secrets this home has in the keyring (for migration). */
  list(home: string): string[];
}

export function keyringUnavailable(message: string, cause?: unknown): PortholeError {
  return new PortholeError('KEYRING_UNAVAILABLE', message, { cause });
}
