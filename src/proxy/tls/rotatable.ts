/**
 * What a TLS context whose material can be replaced while it serves looks like to the
 * code that replaces it. Two producers are meant to share it: the file watcher
 * (rotation.ts: files re-read after cert-manager or a Secret volume updated them) and,
 * later, an SDS provider delivering new secrets. Both hand a `TlsMaterial` to `rotate`,
 * which validates it exactly as at config time and swaps it in, or throws and leaves the
 * current material serving.
 */
import type { CommonTlsContext__Output } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.js';
import type { TlsMaterial } from './tls-context.js';

/** Where each piece of material came from: a file name, or null for inline data. */
export interface TlsFiles {
  readonly chains: readonly (string | null)[];
  readonly keys: readonly (string | null)[];
  readonly ca: string | null;
}

export interface RotatableTls {
  /** The files its material is read from (null entries: inline). */
  readonly files: TlsFiles;
  /** The material serving now. */
  readonly material: TlsMaterial;
  /** Reads the material again from its DataSources; throws (naming field and file) as at config time. */
  read(): TlsMaterial;
  /**
   * Validates `material` as at config time and swaps it in: true. False when it equals
   * the current material (nothing to do). Throws when it is not usable (a key that does
   * not match its certificate...); the current material keeps serving.
   */
  rotate(material: TlsMaterial): boolean;
}

type Common = Partial<CommonTlsContext__Output> | null | undefined;

/** The file names of `common`'s DataSources. */
export function filesOf(common: Common): TlsFiles {
  const certs = common?.tls_certificates ?? [];
  return {
    chains: certs.map((c) => c.certificate_chain?.filename || null),
    keys: certs.map((c) => c.private_key?.filename || null),
    ca: common?.validation_context?.trusted_ca?.filename || null,
  };
}

/** Every file name in `files`. */
export function fileList(files: TlsFiles): string[] {
  return [...files.chains, ...files.keys, files.ca].filter((f): f is string => f !== null);
}

/** Whether two materials hold the same bytes. */
export function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.ca === b.ca && sameList(a.chains, b.chains) && sameList(a.keys, b.keys);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The files whose content differs between `before` and `after` (for the rotation log line). */
export function changedFiles(files: TlsFiles, before: TlsMaterial, after: TlsMaterial): string[] {
  const out: string[] = [];
  files.chains.forEach((f, i) => f !== null && before.chains[i] !== after.chains[i] && out.push(f));
  files.keys.forEach((f, i) => f !== null && before.keys[i] !== after.keys[i] && out.push(f));
  if (files.ca !== null && before.ca !== after.ca) out.push(files.ca);
  return out;
}
