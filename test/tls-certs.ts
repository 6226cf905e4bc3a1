/**
 * Certificates for TLS tests, made at run time with `@peculiar/x509` (ECDSA P-256): a
 * test CA and leaf certificates it signs, with DNS/URI subject alternative names. Nothing
 * is committed, so nothing expires, and each test can make the exact certificate it needs
 * (a wrong SAN, another CA, a client certificate).
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR_MS = 3_600_000;

/** A certificate and its private key, both PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

export interface LeafOptions {
  /** DNS subject alternative names; the first is also the common name. */
  readonly dns?: readonly string[];
  /** URI subject alternative names (SPIFFE ids). */
  readonly uri?: readonly string[];
  /** A client certificate (extended key usage clientAuth) instead of a server one. */
  readonly client?: boolean;
}

let serial = 1;

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - HOUR_MS), notAfter: new Date(now + 24 * HOUR_MS) };
}

export class TestCa {
  readonly cert: string;
  readonly #caCert: x509.X509Certificate;
  readonly #keys: CryptoKeyPair;

  private constructor(caCert: x509.X509Certificate, keys: CryptoKeyPair) {
    this.#caCert = caCert;
    this.#keys = keys;
    this.cert = caCert.toString('pem');
  }

  /** A self-signed CA named `name`. */
  static async create(name = 'Trellis Test CA'): Promise<TestCa> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: (serial++).toString(16).padStart(2, '0'),
      name: `CN=${name}`,
      ...validity(),
      keys,
      signingAlgorithm: ALG,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
    });
    return new TestCa(cert, keys);
  }

  /** A leaf certificate signed by this CA. */
  async issue(options: LeafOptions = {}): Promise<PemPair> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const dns = options.dns ?? [];
    const names = [...dns.map((value) => ({ type: 'dns' as const, value })), ...(options.uri ?? []).map((value) => ({ type: 'url' as const, value }))];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (serial++).toString(16).padStart(2, '0'),
      subject: `CN=${dns[0] ?? 'test'}`,
      issuer: this.#caCert.subject,
      ...validity(),
      publicKey: keys.publicKey,
      signingKey: this.#keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([options.client === true ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      ],
    });
    return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
  }
}

/** Writes `<base>.crt` and `<base>.key` into `dir`; returns their paths. */
export function writePair(dir: string, base: string, pair: PemPair): { cert: string; key: string } {
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  writeFileSync(cert, pair.cert);
  writeFileSync(key, pair.key, { mode: 0o600 });
  return { cert, key };
}
