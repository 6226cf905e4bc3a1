/**
 * Type URLs of the xDS resources and of the extension configs Trellis packs into
 * `typed_config` Anys. A DiscoveryResponse's `type_url` and each of its resources'
 * `type_url` must be equal, byte for byte (xds-notes: "each Any's type_url equals the
 * response's").
 */
const PREFIX = 'type.googleapis.com/';

export const TYPE_URLS = {
  // Resources (one per xDS type).
  LISTENER: `${PREFIX}envoy.config.listener.v3.Listener`,
  ROUTE: `${PREFIX}envoy.config.route.v3.RouteConfiguration`,
  CLUSTER: `${PREFIX}envoy.config.cluster.v3.Cluster`,
  ENDPOINT: `${PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  SECRET: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,

  // Network and HTTP filters (`typed_config` of a filter).
  HTTP_CONNECTION_MANAGER: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  TCP_PROXY: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  ROUTER: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  FAULT: `${PREFIX}envoy.extensions.filters.http.fault.v3.HTTPFault`,
  CORS: `${PREFIX}envoy.extensions.filters.http.cors.v3.Cors`,
  /** Per-route CORS config (`typed_per_filter_config`), the v3 replacement of RouteAction.cors. */
  CORS_POLICY: `${PREFIX}envoy.extensions.filters.http.cors.v3.CorsPolicy`,

  // Listener filters.
  TLS_INSPECTOR: `${PREFIX}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`,
  HTTP_INSPECTOR: `${PREFIX}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector`,
  ORIGINAL_DST: `${PREFIX}envoy.extensions.filters.listener.original_dst.v3.OriginalDst`,

  // Transport sockets and cluster types.
  UPSTREAM_TLS_CONTEXT: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  DOWNSTREAM_TLS_CONTEXT: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  AGGREGATE_CLUSTER: `${PREFIX}envoy.extensions.clusters.aggregate.v3.ClusterConfig`,
} as const;

export type TypeUrl = (typeof TYPE_URLS)[keyof typeof TYPE_URLS];

/**
 * The order in which an ADS server sends a change that spans types: clusters, then their
 * endpoints, then listeners, then routes. A client keeps the old route until every
 * cluster it names has arrived (CDS and EDS), so a route sent before its clusters takes
 * effect late; Envoy warms clusters and listeners the same way. go-control-plane
 * `pkg/cache/types` ResponseOrder; xds-notes "Push CDS/EDS before the RDS that needs
 * them". Secrets are not ordered here: a cluster or listener waits for its SDS secret.
 */
export const PUSH_ORDER = [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE] as const;
