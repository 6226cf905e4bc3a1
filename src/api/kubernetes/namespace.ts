/**
 * The Kubernetes core/v1 Namespace spec. The mesh reads a Namespace for its labels
 * (`istio-injection`, `istio.io/rev`), which are metadata; the spec holds only
 * `finalizers` and is accepted so real manifests load.
 */
import { type Schema, array, object } from '../schema/schema.js';
import { string } from '../schema/scalars.js';

export interface NamespaceSpec {
  readonly finalizers: readonly string[];
}

const spec = object(
  { finalizers: array(string({ nonEmpty: 'finalizer must not be empty' })) },
  { expected: 'a Namespace spec object', map: (v): NamespaceSpec => ({ finalizers: v.finalizers ?? [] }) },
);

/** `spec` is optional on a Namespace (kubectl writes none): absent or null reads as empty. */
export const namespaceSpec: Schema<NamespaceSpec> = {
  expected: spec.expected,
  parse(value, path, ctx) {
    return value === undefined || value === null ? { finalizers: [] } : spec.parse(value, path, ctx);
  },
};
