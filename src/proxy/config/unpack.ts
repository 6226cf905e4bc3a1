/** Typed configs (`Any`) inside resources, as the xDS client hands them over. */
import { decodeAny } from '../../xds/any.js';

/** Nested Anys arrive unpacked (`{'@type', ...}`) from grpc-js, or packed; read both. */
export function unpack(typed: unknown): { type: string; value: Record<string, unknown> } | undefined {
  if (typed === null || typeof typed !== 'object') return undefined;
  const t = typed as Record<string, unknown>;
  if (typeof t['@type'] === 'string') return { type: t['@type'], value: t };
  if (typeof t.type_url === 'string') {
    const d = decodeAny<Record<string, unknown>>(t as never);
    return d.ok ? { type: t.type_url, value: d.value } : undefined;
  }
  return undefined;
}

