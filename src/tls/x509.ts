// X.509 v3 certificates built at run time (RFC 5280) with node:crypto and the DER encoder in
// ./der.ts: a throwaway CA and server certificates for the relay demo, test CAs, and
// `serve --tls self-signed`. No openssl binary, no dependencies.
//
// Keys are always ECDSA P-256 signed with ecdsa-with-SHA256: small, fast to generate, and
// accepted by every TLS 1.3 stack. Ed25519 certificates are not offered because browsers and
// most TLS clients (Node's included, in practice) do not accept them for server auth.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import { PortholeError } from '../errors.js';
import * as der from './der.js';

/** Leaf lifetime: 397 days, the longest browsers accept for a publicly trusted leaf. */
export const DEFAULT_LEAF_DAYS = 397;
/** CA lifetime: about 10 years. */
export const DEFAULT_CA_DAYS = 3650;
/** notBefore is backdated this much so peers with a slow clock accept a fresh certificate. */
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
/** RFC 5280 Appendix A.1, ub-common-name. */
const MAX_COMMON_NAME = 64;

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KU_DIGITAL_SIGNATURE = 0;
const KU_KEY_CERT_SIGN = 5;
const KU_CRL_SIGN = 6;

export interface CertificateOptions {
  /** Subject common name (1–64 characters). Informational only: TLS clients match subjectAltName. */
  commonName: string;
  /**
   * subjectAltName DNS names; a wildcard is allowed as the whole leftmost label
   * (`*.tunnel.example.test`). Lowercased. A leaf needs at least one DNS name or IP address.
   */
  dnsNames?: string[];
  /** subjectAltName IP addresses, IPv4 or IPv6 (no zone id). */
  ipAddresses?: string[];
  /**
   * Lifetime: notBefore = now − 1 h (clock skew), notAfter = now + days.
   * Default 397 days for a leaf (the browser maximum), 3650 for a CA.
   */
  days?: number;
  /**
   * A CA certificate: basicConstraints CA:TRUE with pathLenConstraint 0 (it signs leaves only),
   * keyUsage keyCertSign|cRLSign, no subjectAltName. Default false (a server/client leaf).
   */
  isCA?: boolean;
  /**
   * Sign with this CA (an ECDSA P-256 CA certificate and its PKCS#8 or SEC1 key);
   * omitted → self-signed. Not allowed with isCA (intermediates are not supported).
   */
  issuer?: { certPem: string; keyPem: string };
  /** The clock, for tests that need expired or future certificates. Default: now. */
  now?: Date;
  /**
   * Certify this existing ECDSA P-256 private key (PEM) instead of a new one: a renewal that
   * keeps the public key, so SPKI pins stay valid. Default: a fresh key pair.
   */
  keyPem?: string;
}

export interface CertificatePins {
  /** SHA-256 of the certificate DER, formatted like X509Certificate.fingerprint256 (AA:BB:…). */
  fingerprint256: string;
  /** Base64 SHA-256 of the DER SubjectPublicKeyInfo: the RFC 7469 pin, stable across renewals with the same key. */
  spkiSha256: string;
}

export interface IssuedCertificate extends CertificatePins {
  certPem: string;
  /** PKCS#8 PEM, unencrypted: callers write it with mode 0600. */
  keyPem: string;
}

function invalid(message: string, cause?: unknown): PortholeError {
  return new PortholeError('INVALID_ARGUMENT', message, cause === undefined ? {} : { cause });
}

/** Creates a P-256 key pair and a certificate for it, self-signed or signed by `issuer`. */
export function createCertificate(options: CertificateOptions): IssuedCertificate {
  const settings = checkOptions(options);
  const { privateKey, publicKey } = options.keyPem !== undefined ? existingKeyPair(options.keyPem) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const subject = nameWithCommonName(settings.commonName);
  const keyId = keyIdentifier(spki);
  const signer: Signer = options.issuer
    ? loadIssuer(options.issuer)
    : { name: subject, keyId, key: privateKey };

  const notBefore = new Date(settings.now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(settings.now.getTime() + settings.days * DAY_MS);
  const signatureAlgorithm = der.sequence(der.oid(OID.ecdsaWithSha256)); // RFC 5758 §3.2: no parameters
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(serialNumber()),
    signatureAlgorithm,
    signer.name,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    subject,
    spki,
    der.explicit(3, der.sequence(...extensions(settings, keyId, signer.keyId))),
  );
  const signature = sign('sha256', tbs, signer.key); // ECDSA-Sig-Value, DER (RFC 5758 §3.2)
  const certDer = der.sequence(tbs, signatureAlgorithm, der.bitString(signature));
  return {
    certPem: toPem('CERTIFICATE', certDer),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    ...pinsOf(certDer),
  };
}

function existingKeyPair(keyPem: string): { privateKey: KeyObject; publicKey: KeyObject } {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (err) {
    throw invalid('invalid keyPem: not a PEM private key', err);
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw invalid('invalid keyPem: an ECDSA P-256 key is required');
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Pins of an existing PEM certificate (the first one in `certPem`). */
export function certificatePins(certPem: string): CertificatePins {
  return pinsOf(parseCertificate(certPem, 'certPem').raw);
}

interface Settings {
  commonName: string;
  dnsNames: string[];
  ipAddresses: Buffer[];
  days: number;
  isCA: boolean;
  now: Date;
}

function checkOptions(options: CertificateOptions): Settings {
  const { commonName } = options;
  if (typeof commonName !== 'string' || commonName.length === 0 || [...commonName].length > MAX_COMMON_NAME) {
    throw invalid(`invalid commonName: a string of 1–${MAX_COMMON_NAME} characters is required`);
  }
  const isCA = options.isCA ?? false;
  const dnsNames = [...new Set((options.dnsNames ?? []).map(checkDnsName))];
  const ipAddresses = dedupe((options.ipAddresses ?? []).map(ipAddressBytes));
  if (isCA && options.issuer) {
    throw invalid('isCA with issuer: intermediate CAs are not supported; create a self-signed CA instead');
  }
  if (isCA && dnsNames.length + ipAddresses.length > 0) {
    throw invalid('dnsNames and ipAddresses belong on leaf certificates, not on a CA');
  }
  if (!isCA && dnsNames.length + ipAddresses.length === 0) {
    throw invalid('a leaf certificate needs dnsNames or ipAddresses: TLS clients match subjectAltName, not commonName');
  }
  const days = options.days ?? (isCA ? DEFAULT_CA_DAYS : DEFAULT_LEAF_DAYS);
  if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0) {
    throw invalid(`invalid days ${String(days)}: a positive number is required`);
  }
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw invalid('invalid now: a valid Date is required');
  if (new Date(now.getTime() + days * DAY_MS).getUTCFullYear() > 9999) {
    throw invalid(`invalid days ${days}: notAfter would be past the year 9999`);
  }
  // Whole seconds: DER times carry none smaller (RFC 5280 §4.1.2.5.2).
  return { commonName, dnsNames, ipAddresses, days, isCA, now: new Date(Math.floor(now.getTime() / 1000) * 1000) };
}

/** RFC 1034 §3.5 / RFC 1123 §2.1 label: letters, digits, inner hyphens, 1–63 octets. */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A dNSName (RFC 5280 §4.2.1.6): an ASCII host name (IDNs in their xn-- form), lowercased.
 * A wildcard must be the whole leftmost label and cover at least two more labels, because
 * TLS clients refuse `*.test`-style patterns (RFC 6125 §6.4.3).
 */
function checkDnsName(name: string): string {
  if (typeof name !== 'string') throw invalid('invalid dnsNames entry: not a string');
  const lower = name.toLowerCase();
  if (isIP(lower) !== 0) throw invalid(`invalid DNS name "${name}": an IP address belongs in ipAddresses`);
  const labels = lower.split('.');
  const wildcard = labels[0] === '*';
  const rest = wildcard ? labels.slice(1) : labels;
  if (lower.length > 253 || !rest.every((label) => LABEL.test(label))) {
    throw invalid(
      `invalid DNS name "${name}": use letters, digits and hyphens in dot-separated labels ` +
        '(no trailing dot; IDNs in xn-- form), with "*" only as the whole leftmost label',
    );
  }
  if (wildcard && rest.length < 2) {
    throw invalid(`invalid DNS name "${name}": a wildcard needs two labels after it, as in *.tunnel.example.test`);
  }
  return lower;
}

/** iPAddress (RFC 5280 §4.2.1.6): 4 octets for IPv4, 16 for IPv6, network byte order. */
function ipAddressBytes(text: string): Buffer {
  const family = typeof text === 'string' ? isIP(text) : 0;
  if (family === 4) return Buffer.from(text.split('.').map(Number));
  if (family !== 6 || text.includes('%')) {
    throw invalid(`invalid IP address "${String(text)}": IPv4 or IPv6 without brackets or zone id`);
  }
  let hex = text;
  const lastColon = hex.lastIndexOf(':');
  const tail = hex.slice(lastColon + 1);
  if (tail.includes('.')) {
    // RFC 4291 §2.2 form 3: a dotted-quad tail is the last two 16-bit groups.
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    hex = hex.slice(0, lastColon + 1) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head = '', gapTail] = hex.split('::'); // isIP allows at most one '::'
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = gapTail === undefined || gapTail === '' ? [] : gapTail.split(':');
  const zeros = gapTail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const bytes = Buffer.alloc(16);
  for (const [i, group] of [...headGroups, ...zeros, ...tailGroups].entries()) {
    bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  }
  return bytes;
}

function dedupe(buffers: Buffer[]): Buffer[] {
  return buffers.filter((b, i) => buffers.findIndex((other) => other.equals(b)) === i);
}

function serialNumber(): Buffer {
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; 128 random bits (17 octets with a sign pad).
  for (;;) {
    const serial = randomBytes(16);
    if (serial.some((octet) => octet !== 0)) return serial;
  }
}

/** Name with a single RDN, CN as UTF8String (RFC 5280 §4.1.2.4, §4.1.2.6). */
function nameWithCommonName(commonName: string): Buffer {
  return der.sequence(der.setOf(der.sequence(der.oid(OID.commonName), der.utf8String(commonName))));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value (no unused-bits octet). */
function keyIdentifier(spki: Buffer): Buffer {
  const [, bits] = der.readChildren(spki, der.readTlv(spki));
  if (bits === undefined || bits.tag !== der.TAG.BIT_STRING) throw invalid('invalid SubjectPublicKeyInfo');
  return createHash('sha1')
    .update(spki.subarray(bits.contentStart + 1, bits.end))
    .digest();
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  // DER omits a BOOLEAN equal to its DEFAULT (critical DEFAULT FALSE).
  const flag = critical ? [der.boolean(true)] : [];
  return der.sequence(der.oid(oid), ...flag, der.octetString(value));
}

function extensions(settings: Settings, keyId: Buffer, authorityKeyId: Buffer): Buffer[] {
  const list: Buffer[] = [];
  if (settings.isCA) {
    // §4.2.1.9: critical in CA certificates; pathLenConstraint 0 = it may sign leaves only.
    list.push(extension(OID.basicConstraints, true, der.sequence(der.boolean(true), der.integer(0))));
    list.push(extension(OID.keyUsage, true, der.namedBits([KU_KEY_CERT_SIGN, KU_CRL_SIGN])));
  } else {
    list.push(extension(OID.basicConstraints, true, der.sequence())); // cA DEFAULT FALSE
    // ECDHE key exchange: the EC key only signs, so digitalSignature alone (no keyEncipherment).
    list.push(extension(OID.keyUsage, true, der.namedBits([KU_DIGITAL_SIGNATURE])));
    list.push(extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth), der.oid(OID.clientAuth))));
    const names = [
      ...settings.dnsNames.map((name) => der.implicit(2, der.ia5String(name))), // dNSName [2]
      ...settings.ipAddresses.map((bytes) => der.implicit(7, der.octetString(bytes))), // iPAddress [7]
    ];
    // §4.2.1.6: not critical, since the subject is not empty.
    list.push(extension(OID.subjectAltName, false, der.sequence(...names)));
  }
  list.push(extension(OID.subjectKeyIdentifier, false, der.octetString(keyId)));
  // §4.2.1.1: keyIdentifier [0] IMPLICIT; also present on self-signed certificates, like OpenSSL does.
  list.push(extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicit(0, der.octetString(authorityKeyId)))));
  return list;
}

interface Signer {
  /** The issuer's subject Name, DER exactly as in its certificate. */
  name: Buffer;
  /** Its subjectKeyIdentifier (or one computed by method 1 when it has none). */
  keyId: Buffer;
  key: KeyObject;
}

function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw invalid(`${what} is not a PEM certificate`, err);
  }
}

function loadIssuer(issuer: { certPem: string; keyPem: string }): Signer {
  const cert = parseCertificate(issuer.certPem, 'issuer.certPem');
  if (!cert.ca) throw invalid('issuer.certPem is not a CA certificate (basicConstraints CA:TRUE)');
  let key: KeyObject;
  try {
    key = createPrivateKey(issuer.keyPem);
  } catch (err) {
    throw invalid('issuer.keyPem is not an unencrypted PEM private key', err);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw invalid('issuer.keyPem must be an ECDSA P-256 key');
  }
  const spkiOf = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spkiOf(createPublicKey(key)).equals(spkiOf(cert.publicKey))) {
    throw invalid('issuer.keyPem does not belong to issuer.certPem');
  }
  const fields = certificateFields(cert.raw);
  return { name: fields.subject, keyId: fields.subjectKeyId ?? keyIdentifier(fields.spki), key };
}

/**
 * The parts of a Certificate (RFC 5280 §4.1) read back here:
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
 *   TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
 *       validity, subject, subjectPublicKeyInfo, [1] [2] unique IDs OPTIONAL, [3] extensions OPTIONAL }
 */
function certificateFields(certDer: Buffer): { subject: Buffer; spki: Buffer; subjectKeyId: Buffer | undefined } {
  const [tbs] = der.readChildren(certDer, der.readTlv(certDer));
  if (tbs === undefined) throw invalid('malformed certificate');
  const fields = der.readChildren(certDer, tbs);
  const first = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version
  const subject = fields[first + 4];
  const spki = fields[first + 5];
  if (subject === undefined || spki === undefined) throw invalid('malformed certificate');
  const slice = (t: der.Tlv) => certDer.subarray(t.start, t.end);
  const extensionsField = fields.slice(first + 6).find((t) => t.tag === 0xa3);
  return { subject: slice(subject), spki: slice(spki), subjectKeyId: extensionsField && findSubjectKeyId(certDer, extensionsField) };
}

function findSubjectKeyId(certDer: Buffer, wrapper: der.Tlv): Buffer | undefined {
  const skiOid = der.oid(OID.subjectKeyIdentifier);
  const [list] = der.readChildren(certDer, wrapper);
  for (const ext of list ? der.readChildren(certDer, list) : []) {
    const parts = der.readChildren(certDer, ext);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (id === undefined || value === undefined || !certDer.subarray(id.start, id.end).equals(skiOid)) continue;
    const inner = der.readTlv(certDer, value.contentStart); // extnValue holds an OCTET STRING keyIdentifier
    return inner.tag === der.TAG.OCTET_STRING ? certDer.subarray(inner.contentStart, inner.end) : undefined;
  }
  return undefined;
}

function pinsOf(certDer: Buffer): CertificatePins {
  const hex = createHash('sha256').update(certDer).digest('hex').toUpperCase();
  return {
    fingerprint256: hex.match(/../g)!.join(':'),
    spkiSha256: createHash('sha256').update(certificateFields(certDer).spki).digest('base64'),
  };
}

function toPem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g)!;
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
