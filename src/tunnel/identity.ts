// The desk's Ed25519 identity (DESIGN §5: $PORTHOLE_HOME/identity/, 0600). It binds the
// tunnel subdomain: the relay gives a name to a public key, never to whoever asks.
import { generateKeyPairSync, createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { ensureDir, readSecretFile, writeFileAtomic } from '../util/fs.js';
import { rawPublicKey } from '../protocol/handshake.js';

export interface DeskIdentity {
  privateKeyPem: string;
  /** 32 raw bytes, base64url: what the relay registers. */
  publicKey: string;
}

/** Loads the desk key, creating it (0600 in a 0700 directory) on first use. */
export function loadOrCreateIdentity(identityDir: string): DeskIdentity {
  const file = join(identityDir, 'desk-ed25519.pem');
  const existing = readSecretFile(file);
  if (existing !== undefined) {
    const key = createPrivateKey(existing);
    return { privateKeyPem: existing, publicKey: rawPublicKey(createPublicKey(key)) };
  }
  ensureDir(identityDir, 0o700);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileAtomic(file, pem, { mode: 0o600 });
  return { privateKeyPem: pem, publicKey: rawPublicKey(publicKey) };
}
