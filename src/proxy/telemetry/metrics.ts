/**
 * Istio's standard metrics (istio-compat §3), exposed in Prometheus text format with
 * Istio's names, label keys (in Istio's order) and Envoy's default histogram buckets, so
 * Istio's Grafana dashboards and Kiali's queries work unchanged.
 *
 * Cheap on the hot path: a request resolves its label set to a handle once (a Map lookup
 * on a key the caller caches per route target and outcome), and recording is a few
 * increments on that handle's preallocated arrays.
 */

/** Envoy's default buckets, used by Istio for ms and bytes histograms alike. */
export const DEFAULT_BUCKETS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

export const HTTP_LABELS = [
  'reporter', 'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
  'source_principal', 'source_app', 'source_version', 'source_cluster', 'destination_workload',
  'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_canonical_service', 'destination_canonical_revision', 'destination_service_name',
  'destination_service_namespace', 'destination_cluster', 'request_protocol', 'response_code', 'grpc_response_status',
  'response_flags', 'connection_security_policy',
] as const;

export type HttpLabels = Readonly<Record<(typeof HTTP_LABELS)[number], string>>;

/** TCP metrics carry the HTTP labels without response_code and grpc_response_status. */
export const TCP_LABELS = HTTP_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_response_status');

/** One label set of the TCP metrics. */
export class TcpSeries {
  readonly labelText: string;
  opened = 0;
  closed = 0;
  sent = 0;
  received = 0;

  constructor(labels: HttpLabels) {
    this.labelText = TCP_LABELS.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',');
  }
}

class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(buckets: number) {
    this.counts = new Float64Array(buckets);
  }
  observe(v: number, buckets: readonly number[]): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < buckets.length; i++) if (v <= (buckets[i] as number)) this.counts[i] = (this.counts[i] as number) + 1;
  }
}

/** One label set of the HTTP metrics. */
export class HttpSeries {
  readonly labelText: string;
  requests = 0;
  readonly duration = new Histogram(DEFAULT_BUCKETS.length);
  readonly requestBytes = new Histogram(DEFAULT_BUCKETS.length);
  readonly responseBytes = new Histogram(DEFAULT_BUCKETS.length);

  constructor(labels: HttpLabels) {
    this.labelText = HTTP_LABELS.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',');
  }

  record(durationMs: number, requestBytes: number, responseBytes: number): void {
    this.requests++;
    this.duration.observe(durationMs, DEFAULT_BUCKETS);
    this.requestBytes.observe(requestBytes, DEFAULT_BUCKETS);
    this.responseBytes.observe(responseBytes, DEFAULT_BUCKETS);
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The series of successful (flag-less) HTTP requests of one (peer, service), by status code. */
export interface SeriesFamily {
  readonly byStatus: Map<number, HttpSeries>;
}

export class MetricsRegistry {
  readonly #http = new Map<string, HttpSeries>();
  /**
   * Families by peer key ('' for none), then destination service: the per-request lookup
   * for the common case (no response flags), three map reads without building a key
   * (http-labels.ts).
   */
  readonly families = new Map<string, Map<string, SeriesFamily>>();
  readonly #tcp = new Map<string, TcpSeries>();

  tcp(key: string, labels: () => HttpLabels): TcpSeries {
    let s = this.#tcp.get(key);
    if (s === undefined) {
      s = new TcpSeries(labels());
      this.#tcp.set(key, s);
    }
    return s;
  }

  /** The series for a label set; `key` identifies it cheaply (callers cache it). */
  http(key: string, labels: () => HttpLabels): HttpSeries {
    let s = this.#http.get(key);
    if (s === undefined) {
      s = new HttpSeries(labels());
      this.#http.set(key, s);
    }
    return s;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    const series = [...this.#http.values()];
    out.push('# TYPE istio_requests_total counter');
    for (const s of series) out.push(`istio_requests_total{${s.labelText}} ${s.requests}`);
    histogram(out, 'istio_request_duration_milliseconds', series, (s) => s.duration);
    histogram(out, 'istio_request_bytes', series, (s) => s.requestBytes);
    histogram(out, 'istio_response_bytes', series, (s) => s.responseBytes);
    const tcp = [...this.#tcp.values()];
    const counter = (name: string, get: (s: TcpSeries) => number): void => {
      out.push(`# TYPE ${name} counter`);
      for (const s of tcp) out.push(`${name}{${s.labelText}} ${get(s)}`);
    };
    counter('istio_tcp_connections_opened_total', (s) => s.opened);
    counter('istio_tcp_connections_closed_total', (s) => s.closed);
    counter('istio_tcp_sent_bytes_total', (s) => s.sent);
    counter('istio_tcp_received_bytes_total', (s) => s.received);
    return out.join('\n') + '\n';
  }
}

function histogram(out: string[], name: string, series: readonly HttpSeries[], get: (s: HttpSeries) => Histogram): void {
  out.push(`# TYPE ${name} histogram`);
  for (const s of series) {
    const h = get(s);
    DEFAULT_BUCKETS.forEach((b, i) => out.push(`${name}_bucket{${s.labelText},le="${b}"} ${h.counts[i]}`));
    out.push(`${name}_bucket{${s.labelText},le="+Inf"} ${h.count}`);
    out.push(`${name}_sum{${s.labelText}} ${h.sum}`);
    out.push(`${name}_count{${s.labelText}} ${h.count}`);
  }
}
