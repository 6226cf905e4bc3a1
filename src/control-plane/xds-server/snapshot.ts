/**
 * An immutable, versioned set of xDS resources for one proxy (after go-control-plane's
 * `Snapshot`). Each type has a version computed from its content, so versions are stable
 * across control-plane restarts: a client that reconnects with the version it has is not
 * told that identical content is new, and different content never reuses a version.
 */
import { createHash } from 'node:crypto';

/** A resource ready to send: its name and its `google.protobuf.Any`. */
export interface EncodedResource {
  readonly name: string;
  readonly any: { readonly type_url: string; readonly value: Buffer };
}

export interface TypeSnapshot {
  readonly version: string;
  readonly resources: ReadonlyMap<string, EncodedResource>;
}

export interface XdsSnapshot {
  /** By type URL. Types with no resources are present with an empty map. */
  readonly types: ReadonlyMap<string, TypeSnapshot>;
}

/** Builds a snapshot; each type's version is a hash of its resources' names and bytes. */
export function makeSnapshot(byType: ReadonlyMap<string, readonly EncodedResource[]>): XdsSnapshot {
  const types = new Map<string, TypeSnapshot>();
  for (const [typeUrl, list] of byType) {
    const sorted = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const hash = createHash('sha256');
    for (const r of sorted) hash.update(r.name).update('\0').update(r.any.value).update('\0');
    types.set(typeUrl, { version: hash.digest('hex').slice(0, 16), resources: new Map(sorted.map((r) => [r.name, r])) });
  }
  return { types };
}

export const EMPTY_SNAPSHOT: XdsSnapshot = { types: new Map() };

export function typeSnapshot(snapshot: XdsSnapshot, typeUrl: string): TypeSnapshot {
  return snapshot.types.get(typeUrl) ?? EMPTY_TYPE;
}

const EMPTY_TYPE: TypeSnapshot = { version: 'empty', resources: new Map() };
