// PKCS#10 certificate signing requests (RFC 2986) for ACME finalize (RFC 8555 §7.4): one DNS
// name, an ECDSA P-256 key, ecdsa-with-SHA256. Built with the DER encoder in ../tls/der.ts.
import { createPublicKey, type KeyObject, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { PortholeError } from '../errors.js';
import * as der from '../tls/der.js';

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  extensionRequest: '1.2.840.113549.1.9.14', // PKCS#9 (RFC 2985 §5.4.2)
  subjectAltName: '2.5.29.17',
} as const;

/** RFC 5280 Appendix A.1, ub-common-name: a longer name is left out of the subject. */
const MAX_COMMON_NAME = 64;
/** RFC 1034 §3.5 / RFC 1123 §2.1 label: letters, digits, inner hyphens, 1–63 octets. */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A host name an http-01 challenge can prove, lowercased: ASCII labels (IDNs in xn-- form),
 * at least two of them, no wildcard (RFC 8555 §8.3 cannot validate one), not an IP address.
 */
export function checkAcmeName(name: string): string {
  const lower = typeof name === 'string' ? name.toLowerCase() : '';
  const labels = lower.split('.');
  if (lower.length === 0 || lower.length > 253 || isIP(lower) !== 0 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      `invalid certificate name "${String(name)}": a DNS name of letters, digits and hyphens in dot-separated labels (no wildcard, no trailing dot, IDNs in xn-- form)`,
    );
  }
  return lower;
}

/**
 * CertificationRequest (RFC 2986 §4) as DER for `name`, signed by `key`:
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name,
 *       subjectPKInfo, attributes [0] IMPLICIT SET OF Attribute }
 * with one extensionRequest attribute carrying subjectAltName dNSName. CAs take the names
 * from the SAN (RFC 8555 §7.4); the CN is there for tools that still display it.
 */
export function createCsr(name: string, key: KeyObject): Buffer {
  const dnsName = checkAcmeName(name);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const subject =
    dnsName.length <= MAX_COMMON_NAME
      ? der.sequence(der.setOf(der.sequence(der.oid(OID.commonName), der.utf8String(dnsName))))
      : der.sequence(); // an empty Name: the SAN alone identifies the subject
  const san = der.sequence(der.implicit(2, der.ia5String(dnsName))); // GeneralName dNSName [2]
  const extensions = der.sequence(der.sequence(der.oid(OID.subjectAltName), der.octetString(san)));
  const attribute = der.sequence(der.oid(OID.extensionRequest), der.setOf(extensions));
  const info = der.sequence(der.integer(0), subject, spki, der.implicit(0, der.setOf(attribute)));
  const signature = sign('sha256', info, key); // ECDSA-Sig-Value, DER (RFC 5758 §3.2)
  return der.sequence(info, der.sequence(der.oid(OID.ecdsaWithSha256)), der.bitString(signature));
}

/** PEM armour for a CSR, for openssl and humans; ACME itself sends base64url DER. */
export function csrPem(csrDer: Buffer): string {
  const lines = csrDer.toString('base64').match(/.{1,64}/g)!;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}
