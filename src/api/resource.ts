/** A validated resource in domain form, with where it came from. */
import type { ResourceRef } from './finding.js';
import type { Kind, SpecOf } from './kinds.js';
import type { Path } from './schema/path.js';

export interface ObjectMeta {
  readonly name: string;
  /** `default` (or the loader's default) when the file gives none. */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339, when given; Istio orders conflicting config by it. */
  readonly creationTimestamp?: string;
}

export interface Source {
  readonly file: string;
  readonly line: number;
  /** The line of a field inside the resource (its raw YAML path), for findings about it. */
  readonly locate?: (path: Path) => { readonly line: number; readonly column: number };
}

export interface Resource<K extends Kind = Kind> {
  readonly kind: K;
  readonly apiVersion: string;
  readonly metadata: ObjectMeta;
  readonly spec: SpecOf<K>;
  readonly source: Source;
}

export type AnyResource = { [K in Kind]: Resource<K> }[Kind];

/**
 * A workload declared by a Kubernetes kind the mesh itself does not read (a Deployment's
 * pod template, a Pod). `analyze` uses them to check selectors.
 */
export interface DeclaredWorkload {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly source: Source;
}

export function refOf(r: { kind: string; metadata: { namespace: string; name: string } }): ResourceRef {
  return { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
}

export function keyOf(r: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

export function isKindOf<K extends Kind>(r: AnyResource, kind: K): r is Resource<K> & AnyResource {
  return r.kind === kind;
}
