/**
 * Certificate material for TLS contexts, read from Envoy `DataSource`s when the
 * configuration arrives (never per connection): `filename` (what the control plane emits
 * for Istio's file paths), `inline_bytes` and `inline_string`. Each piece is checked here
 * (a readable file, PEM that parses as a certificate or a private key), so a bad one
 * rejects the Listener or Cluster (NACK) with the field and file named, and the previous
 * configuration keeps serving. Messages never include the material itself: a private key
 * must not reach a log or an xDS status.
 */
import { readFileSync } from 'node:fs';
import { certificatesProblem, privateKeyProblem } from '../../core/pem.js';
import type { DataSource__Output } from '../../xds/generated/envoy/config/core/v3/DataSource.js';

/** What a piece of material is, for the check made on it. */
export const PEM_KINDS = { certificates: 'certificates', privateKey: 'private key' } as const;
export type PemKind = (typeof PEM_KINDS)[keyof typeof PEM_KINDS];

type Source = Partial<DataSource__Output> | null | undefined;

/** Where `ds` comes from, for messages: `file "/etc/certs/tls.crt"` or `inline bytes`. */
function origin(ds: Source): string {
  if (ds?.filename) return `file "${ds.filename}"`;
  if (ds?.inline_string) return 'inline string';
  return 'inline bytes';
}

/** The text of `ds`; throws naming `field` when it is empty or cannot be read. */
function readText(ds: Source, field: string): string {
  if (ds == null) throw new Error(`${field}: missing`);
  if (ds.filename) {
    try {
      return readFileSync(ds.filename, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new Error(`${field}: cannot read file "${ds.filename}" (${code})`);
    }
  }
  if (ds.inline_string) return ds.inline_string;
  const bytes = ds.inline_bytes as unknown;
  if (bytes instanceof Uint8Array && bytes.length > 0) return Buffer.from(bytes).toString('utf8');
  if (typeof bytes === 'string' && bytes !== '') return Buffer.from(bytes, 'base64').toString('utf8');
  if (ds.environment_variable) throw new Error(`${field}: environment_variable data sources are not supported`);
  throw new Error(`${field}: empty data source`);
}

/**
 * The PEM text of `ds`, checked to be `kind`. Throws an Error whose message names the
 * field and the file (or inline source), and what is wrong.
 */
export function readPem(ds: Source, field: string, kind: PemKind): string {
  const text = readText(ds, field);
  if (kind === PEM_KINDS.certificates) {
    const problem = certificatesProblem(text);
    if (problem?.kind === 'none') throw new Error(`${field}: ${origin(ds)} holds no PEM certificate`);
    if (problem !== undefined) throw new Error(`${field}: ${origin(ds)} holds a certificate that does not parse`);
  } else if (privateKeyProblem(text) !== undefined) {
    throw new Error(`${field}: ${origin(ds)} is not a valid PEM private key (or it is encrypted)`);
  }
  return text;
}
