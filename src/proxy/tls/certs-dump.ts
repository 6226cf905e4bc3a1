/**
 * The admin `/certs` answer, in Envoy's shape (`admin.v3.Certificates`): one entry per
 * live TLS context with its CA certificates and the leaf of each certificate chain, read
 * from the material the context serves now (so a rotation shows at once). Trellis adds
 * `name`: the listener chain or cluster the context belongs to. Only public certificate
 * data; keys never appear.
 */
import { X509Certificate } from 'node:crypto';
import { PEM_CERTIFICATE as PEM_CERT } from '../../core/pem.js';
import { parseSubjectAltNames } from './san-matcher.js';
import type { TlsTarget } from './rotation.js';

const DAY_MS = 86_400_000;
const INLINE = '<inline>';

type SubjectAltName = { dns: string } | { uri: string } | { ip_address: string };

export interface CertificateDetails {
  readonly path: string;
  readonly serial_number: string;
  readonly subject_alt_names: SubjectAltName[];
  readonly days_until_expiration: number;
  readonly valid_from: string;
  readonly expiration_time: string;
}

export interface CertificatesEntry {
  readonly name: string;
  readonly ca_cert: CertificateDetails[];
  readonly cert_chain: CertificateDetails[];
}

/** `{certificates: [...]}` for `targets`, as of `now`. */
export function certsDump(targets: readonly TlsTarget[], now = Date.now()): { certificates: CertificatesEntry[] } {
  return {
    certificates: targets.map((t) => {
      const { material, files } = t.tls;
      const caCerts = material.ca === null ? [] : (material.ca.match(PEM_CERT) ?? []);
      return {
        name: t.name,
        ca_cert: caCerts.map((pem) => details(pem, files.ca, now)),
        // The leaf of each chain, as Envoy lists it; intermediates are not shown.
        cert_chain: material.chains.map((chain, i) => details(chain.match(PEM_CERT)?.[0] ?? chain, files.chains[i] ?? null, now)),
      };
    }),
  };
}

function details(pem: string, file: string | null, now: number): CertificateDetails {
  const x = new X509Certificate(pem);
  const from = new Date(x.validFrom);
  const to = new Date(x.validTo);
  return {
    path: file ?? INLINE,
    serial_number: x.serialNumber.toLowerCase(),
    subject_alt_names: subjectAltNames(x.subjectAltName),
    days_until_expiration: Math.max(0, Math.floor((to.getTime() - now) / DAY_MS)),
    valid_from: from.toISOString(),
    expiration_time: to.toISOString(),
  };
}

/** Node's `DNS:a, URI:b, IP Address:c` → Envoy's list; other kinds (email...) are left out, as Envoy does. */
export function subjectAltNames(text: string | undefined): SubjectAltName[] {
  return parseSubjectAltNames(text).flatMap((e): SubjectAltName[] => {
    if (e.type === 'DNS') return [{ dns: e.value }];
    if (e.type === 'URI') return [{ uri: e.value }];
    if (e.type === 'IP Address') return [{ ip_address: e.value }];
    return [];
  });
}
