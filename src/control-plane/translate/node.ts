/**
 * Who is asking: the xDS node of a stream, read into what translation needs. Three kinds
 * of client get different resources (xds-notes.md): the Trellis sidecar, the Trellis
 * gateway (`router`), and proxyless gRPC, which accepts only `api_listener` listeners,
 * EDS clusters and no redirects or direct responses.
 *
 * Node metadata (a Struct), as Istio's bootstrap writes it where the names overlap:
 * - `TRELLIS_PROXY_TYPE`: `sidecar` or `router`; absent for proxyless gRPC, recognised by
 *   `GENERATOR: grpc` (Istio's proxyless bootstrap) or a gRPC user agent.
 * - `NAMESPACE`, `LABELS` (a Struct of strings), `SERVICE_ACCOUNT`, `INSTANCE_IPS`
 *   (comma-separated), `OUTBOUND_PORT`, `INBOUND_PORT` (defaults 15001 and 15006).
 * - `INTERCEPTION_MODE` (`REDIRECT` default, or `NONE`) and, with `NONE`, `APP_PORTS`:
 *   where the application listens (`9080=41234,9090=41235`, or one port for all).
 * Istio-style node ids `sidecar~10.0.0.1~name.ns~ns.svc.cluster.local` also give the kind
 * and namespace.
 */
import type { Labels } from '../../api/common.js';

export const PROXY_KINDS = { sidecar: 'sidecar', router: 'router', grpc: 'grpc' } as const;
export type ProxyKind = (typeof PROXY_KINDS)[keyof typeof PROXY_KINDS];

export interface ProxyNode {
  readonly id: string;
  readonly kind: ProxyKind;
  readonly namespace: string;
  readonly labels: Labels;
  readonly serviceAccount: string;
  readonly ips: readonly string[];
  readonly locality: { readonly region: string; readonly zone: string; readonly subzone: string };
  readonly outboundPort: number;
  readonly inboundPort: number;
  /**
   * Istio's `INTERCEPTION_MODE`: `REDIRECT` (iptables sends the workload's traffic to
   * the sidecar: one `virtualInbound` listener) or `NONE` (nothing is captured, as in
   * Trellis's local mesh: the sidecar listens on the workload's own address, one
   * inbound listener per port, and forwards to the application's port).
   */
  readonly interception: 'REDIRECT' | 'NONE';
  /** Where the application listens, per inbound (target) port, with `NONE` (`APP_PORTS` "9080=41234,..."; a bare number for every port); the target port itself when absent. */
  readonly appPorts: ReadonlyMap<number, number>;
  readonly appPortDefault: number | undefined;
}

export const DEFAULT_OUTBOUND_PORT = 15001;
export const DEFAULT_INBOUND_PORT = 15006;

interface NodeInput {
  readonly id?: string;
  readonly metadata?: unknown;
  readonly locality?: unknown;
  readonly user_agent_name?: string;
}

/** `google.protobuf.Struct` as decoded (`{fields: {k: {stringValue...}}}`) or plain JSON, to plain JS. */
export function structToJs(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const v = value as Record<string, unknown>;
  if ('fields' in v && typeof v.fields === 'object' && v.fields !== null) {
    return Object.fromEntries(Object.entries(v.fields as Record<string, unknown>).map(([k, x]) => [k, structToJs(x)]));
  }
  if ('kind' in v && typeof v.kind === 'string') {
    const inner = v[v.kind];
    if (v.kind === 'structValue') return structToJs(inner);
    if (v.kind === 'listValue') return ((inner as { values?: unknown[] })?.values ?? []).map(structToJs);
    if (v.kind === 'nullValue') return null;
    return inner;
  }
  for (const k of ['stringValue', 'numberValue', 'boolValue'] as const) if (k in v) return v[k];
  if ('structValue' in v) return structToJs(v.structValue);
  if ('listValue' in v) return ((v.listValue as { values?: unknown[] })?.values ?? []).map(structToJs);
  return v;
}

function str(x: unknown, fallback = ''): string {
  return typeof x === 'string' ? x : typeof x === 'number' ? String(x) : fallback;
}

function port(x: unknown, fallback: number): number {
  const n = Number(x);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : fallback;
}

/** `APP_PORTS`: `9080=41234,9090=41235`, or a single port for every inbound port. */
function appPorts(text: string): { appPorts: ReadonlyMap<number, number>; appPortDefault: number | undefined } {
  const map = new Map<number, number>();
  let fallback: number | undefined;
  for (const part of text.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const [a, b] = part.split('=');
    if (b === undefined) fallback = port(a, 0) || undefined;
    else {
      const from = port(a, 0);
      const to = port(b, 0);
      if (from > 0 && to > 0) map.set(from, to);
    }
  }
  return { appPorts: map, appPortDefault: fallback };
}

export function parseNode(node: NodeInput): ProxyNode {
  const meta = (structToJs(node.metadata) ?? {}) as Record<string, unknown>;
  const id = node.id ?? '';
  const parts = id.split('~');
  const istioType = parts.length === 4 ? parts[0] : undefined;
  const istioNamespace = parts.length === 4 ? (parts[2]?.split('.')[1] ?? '') : '';
  const declared = str(meta.TRELLIS_PROXY_TYPE);
  let kind: ProxyKind;
  if (declared === 'router' || declared === 'sidecar') kind = declared;
  else if (istioType === 'router') kind = 'router';
  else if (meta.GENERATOR === 'grpc' || /grpc/i.test(node.user_agent_name ?? '')) kind = 'grpc';
  else kind = 'sidecar';
  const rawLabels = meta.LABELS;
  const labels: Record<string, string> = {};
  if (rawLabels !== null && typeof rawLabels === 'object') {
    for (const [k, v] of Object.entries(rawLabels)) if (typeof v === 'string') labels[k] = v;
  }
  const loc = (node.locality ?? {}) as { region?: string; zone?: string; sub_zone?: string };
  return {
    id,
    kind,
    namespace: str(meta.NAMESPACE, istioNamespace || 'default'),
    labels,
    serviceAccount: str(meta.SERVICE_ACCOUNT, 'default'),
    ips: str(meta.INSTANCE_IPS).split(',').map((s) => s.trim()).filter((s) => s !== ''),
    locality: { region: loc.region ?? '', zone: loc.zone ?? '', subzone: loc.sub_zone ?? '' },
    outboundPort: port(meta.OUTBOUND_PORT, DEFAULT_OUTBOUND_PORT),
    inboundPort: port(meta.INBOUND_PORT, DEFAULT_INBOUND_PORT),
    interception: str(meta.INTERCEPTION_MODE).toUpperCase() === 'NONE' ? 'NONE' : 'REDIRECT',
    ...appPorts(str(meta.APP_PORTS)),
  };
}
