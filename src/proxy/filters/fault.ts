/**
 * Envoy's fault filter (`envoy.filters.http.fault`) with the per-route `HTTPFault` that
 * a VirtualService `fault` becomes: a fixed delay and/or an abort, each applied to a
 * fraction of requests, decided independently per request (delay first, then abort, as
 * Envoy). Response flags: `DI` (delay injected), `FI` (fault injected: aborted). A gRPC
 * abort answers HTTP 200 with that `grpc-status` (trailers-only).
 */
export const FAULT_FILTER = 'envoy.filters.http.fault';

const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

export interface FaultConfig {
  /** 0 when no delay. */
  readonly delayMs: number;
  /** Fraction of requests delayed, in [0, 1]. */
  readonly delayFraction: number;
  /** HTTP status of the abort; 0 when no abort (or a gRPC abort). */
  readonly abortStatus: number;
  /** gRPC status of the abort; -1 when none. */
  readonly abortGrpcStatus: number;
  readonly abortFraction: number;
}

interface Fractional {
  readonly numerator?: number;
  readonly denominator?: string | number;
}

interface HttpFaultWire {
  readonly delay?: { readonly fixed_delay?: { readonly seconds?: string | number; readonly nanos?: number } | null; readonly percentage?: Fractional | null } | null;
  readonly abort?: { readonly http_status?: number; readonly grpc_status?: number; readonly error_type?: string; readonly percentage?: Fractional | null } | null;
}

/** A FractionalPercent as a fraction in [0, 1]; absent means 0 (nothing injected), as Envoy's proto says. */
export function fraction(p: Fractional | null | undefined): number {
  if (p == null) return 0;
  const d = typeof p.denominator === 'number' ? [100, 10_000, 1_000_000][p.denominator] ?? 100 : DENOMINATORS[p.denominator ?? 'HUNDRED'] ?? 100;
  return Math.min(1, Math.max(0, (p.numerator ?? 0) / d));
}

function ms(d: { readonly seconds?: string | number; readonly nanos?: number } | null | undefined): number {
  if (d == null) return 0;
  return Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
}

/** The route's fault from its `typed_per_filter_config` entry (decoded), or null when it injects nothing. */
export function compileFault(wire: unknown): FaultConfig | null {
  if (wire === null || typeof wire !== 'object') return null;
  const f = wire as HttpFaultWire;
  const delayMs = ms(f.delay?.fixed_delay);
  const delayFraction = delayMs > 0 ? fraction(f.delay?.percentage) : 0;
  const a = f.abort;
  // With defaults filled in both oneof members read 0; the virtual `error_type` says which is set.
  const kind = a == null ? undefined : (a.error_type ?? (a.grpc_status !== undefined && !(a.http_status ?? 0) ? 'grpc_status' : 'http_status'));
  const abortGrpcStatus = kind === 'grpc_status' ? (a?.grpc_status ?? -1) : -1;
  const abortStatus = kind === 'http_status' ? (a?.http_status ?? 0) : 0;
  const abortFraction = abortStatus > 0 || abortGrpcStatus >= 0 ? fraction(a?.percentage) : 0;
  if (delayFraction === 0 && abortFraction === 0) return null;
  return { delayMs, delayFraction, abortStatus, abortGrpcStatus, abortFraction };
}
