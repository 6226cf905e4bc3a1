/**
 * Translation output → an immutable snapshot of encoded resources. Encoding is memoised
 * per message object: cluster and endpoint objects are shared between proxies of the same
 * mesh version (translate caches them), so each is encoded once, not once per proxy.
 */
import { encodeResource } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import type { Translation } from '../translate/index.js';
import { type EncodedResource, makeSnapshot, type XdsSnapshot } from './snapshot.js';

const encoded = new WeakMap<object, EncodedResource>();

export interface EncodeOutcome {
  readonly snapshot: XdsSnapshot;
  /** Resources that failed to encode (translator bugs), with the reason. */
  readonly errors: readonly string[];
}

function encodeAll(typeUrl: string, messages: readonly object[], nameOf: (m: object) => string, errors: string[]): EncodedResource[] {
  const out: EncodedResource[] = [];
  for (const message of messages) {
    let r = encoded.get(message);
    if (r === undefined) {
      const result = encodeResource(typeUrl, message);
      if (!result.ok) {
        errors.push(`${nameOf(message)}: ${result.error}`);
        continue;
      }
      r = { name: nameOf(message), any: result.any };
      encoded.set(message, r);
    }
    out.push(r);
  }
  return out;
}

export function encodeTranslation(t: Translation): EncodeOutcome {
  const errors: string[] = [];
  const name = (m: object): string => String((m as { name?: unknown }).name ?? '');
  const byType = new Map<string, EncodedResource[]>([
    [TYPE_URLS.LISTENER, encodeAll(TYPE_URLS.LISTENER, t.listeners, name, errors)],
    [TYPE_URLS.ROUTE, encodeAll(TYPE_URLS.ROUTE, t.routes, name, errors)],
    [TYPE_URLS.CLUSTER, encodeAll(TYPE_URLS.CLUSTER, t.clusters, name, errors)],
    [TYPE_URLS.ENDPOINT, encodeAll(TYPE_URLS.ENDPOINT, t.endpoints, (m) => String((m as { cluster_name?: unknown }).cluster_name ?? ''), errors)],
  ]);
  return { snapshot: makeSnapshot(byType), errors };
}
