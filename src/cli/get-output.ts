/**
 * How `trellis get` prints resources: a table with the columns Istio's CRDs give kubectl
 * (VirtualService GATEWAYS and HOSTS, DestinationRule HOST, ...) and where each resource
 * comes from; or the resources as YAML documents (which `trellis apply` takes back) or
 * JSON.
 */
import { stringify } from 'yaml';
import type { Kind } from '../api/kinds.js';

/** One resource as `GET /v1/config` lists it. */
export interface ConfigEntry {
  readonly kind: Kind;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly source: string;
  readonly file: string;
  readonly line: number;
  readonly overrides: { readonly file: string; readonly line: number } | null;
  readonly metadata: { readonly labels: Record<string, string>; readonly annotations: Record<string, string> };
  readonly spec: Record<string, unknown> | undefined;
}

type Column = readonly [header: string, value: (spec: Record<string, unknown>) => unknown];

/** Istio's additionalPrinterColumns (crd-all.gen.yaml), without AGE: the store keeps no times. */
const COLUMNS: Readonly<Partial<Record<Kind, readonly Column[]>>> = {
  VirtualService: [['GATEWAYS', (s) => s.gateways], ['HOSTS', (s) => s.hosts]],
  DestinationRule: [['HOST', (s) => s.host]],
  ServiceEntry: [['HOSTS', (s) => s.hosts], ['LOCATION', (s) => s.location], ['RESOLUTION', (s) => s.resolution]],
  WorkloadEntry: [['ADDRESS', (s) => s.address]],
  PeerAuthentication: [['MODE', (s) => (s.mtls as { mode?: unknown } | undefined)?.mode]],
  AuthorizationPolicy: [['ACTION', (s) => s.action]],
  Service: [['PORTS', (s) => (Array.isArray(s.ports) ? s.ports.map((p: { port?: unknown; protocol?: unknown }) => `${p.port}/${p.protocol ?? 'TCP'}`) : undefined)]],
};

/** `kind` undefined: several kinds (`get all`), one KIND column instead of kind-specific ones. */
export function formatTable(entries: readonly ConfigEntry[], options: { kind: Kind | undefined; allNamespaces: boolean }): string {
  const columns: Column[] = options.kind === undefined ? [] : [...(COLUMNS[options.kind] ?? [])];
  const header = [...(options.allNamespaces ? ['NAMESPACE'] : []), ...(options.kind === undefined ? ['KIND'] : []), 'NAME', ...columns.map((c) => c[0]), 'SOURCE'];
  const rows = entries.map((e) => [
    ...(options.allNamespaces ? [e.namespace] : []),
    ...(options.kind === undefined ? [e.kind.toLowerCase()] : []),
    e.name,
    ...columns.map((c) => cell(c[1](e.spec ?? {}))),
    source(e),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  // kubectl's layout: columns three spaces apart, no trailing spaces.
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] as number) + 3))).join('')).join('\n') + '\n';
}

/** As documents a user can edit and apply again. */
export function formatYaml(entries: readonly ConfigEntry[]): string {
  return entries.map((e) => stringify(toObject(e), { indentSeq: false })).join('---\n');
}

/** One object for a named resource, else a Kubernetes List. */
export function formatJson(entries: readonly ConfigEntry[], single: boolean): string {
  const value = single && entries.length === 1 ? toObject(entries[0] as ConfigEntry) : { apiVersion: 'v1', kind: 'List', items: entries.map(toObject) };
  return JSON.stringify(value, null, 2) + '\n';
}

function toObject(e: ConfigEntry): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name: e.name };
  if (e.namespace !== '') metadata.namespace = e.namespace;
  if (Object.keys(e.metadata.labels).length > 0) metadata.labels = e.metadata.labels;
  if (Object.keys(e.metadata.annotations).length > 0) metadata.annotations = e.metadata.annotations;
  return e.spec === undefined ? { apiVersion: e.apiVersion, kind: e.kind, metadata } : { apiVersion: e.apiVersion, kind: e.kind, metadata, spec: e.spec };
}

function source(e: ConfigEntry): string {
  if (e.source !== 'applied') return `${e.file}:${e.line}`;
  return e.overrides === null ? 'applied' : `applied (over ${e.overrides.file}:${e.overrides.line})`;
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '<none>';
  if (Array.isArray(v)) return v.length === 0 ? '<none>' : v.map(String).join(',');
  return String(v);
}
