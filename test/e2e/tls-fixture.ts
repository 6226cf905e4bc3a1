/**
 * Test equipment for the proxy's TLS: hand-written xDS resources (Envoy's
 * DownstreamTlsContext and UpstreamTlsContext, listeners, routes, static clusters) fed
 * through the fake control plane, and TLS backends on 127.0.0.1 with certificates made at
 * run time (test/tls-certs.ts). Nothing here is committed PEM.
 */
import { once } from 'node:events';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { httpProtocolOptions } from '../../src/control-plane/translate/clusters.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { anyOf } from '../../src/xds/any.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { FakeControlPlane } from '../proxy/fake-control-plane.js';
import type { PemPair } from '../tls-certs.js';

export const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS } = TYPE_URLS;

const exact = (s: string): { exact: string } => ({ exact: s });

export interface FilePair {
  readonly cert: string;
  readonly key: string;
}

export interface DownstreamOptions {
  /** `trusted_ca` file: client certificates are verified (OPTIONAL_MUTUAL unless `require`). */
  readonly ca?: string;
  readonly require?: boolean;
  readonly sans?: readonly string[];
  readonly alpn?: readonly string[];
}

/** A transport socket with a DownstreamTlsContext, as the control plane emits for a Gateway server. */
export function downstreamTls(pair: FilePair, o: DownstreamOptions = {}): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: anyOf(TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, {
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        tls_certificates: [{ certificate_chain: { filename: pair.cert }, private_key: { filename: pair.key } }],
        ...(o.ca === undefined ? {} : { validation_context: { trusted_ca: { filename: o.ca }, match_subject_alt_names: (o.sans ?? []).map(exact) } }),
        alpn_protocols: [...(o.alpn ?? ['h2', 'http/1.1'])],
      },
      ...(o.require === true ? { require_client_certificate: { value: true } } : {}),
    }),
  };
}

export interface UpstreamOptions {
  readonly sni?: string;
  /** `trusted_ca` file; absent: no validation_context (insecureSkipVerify). */
  readonly ca?: string;
  readonly sans?: readonly string[];
  /** MUTUAL: the client certificate to present (files, or inline PEM). */
  readonly client?: FilePair;
  readonly clientInline?: PemPair;
  readonly alpn?: readonly string[];
}

/** A transport socket with an UpstreamTlsContext, as the control plane emits for a DestinationRule's tls. */
export function upstreamTls(o: UpstreamOptions): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: anyOf(TYPE_URLS.UPSTREAM_TLS_CONTEXT, {
      sni: o.sni ?? '',
      common_tls_context: {
        ...(o.client === undefined ? {} : { tls_certificates: [{ certificate_chain: { filename: o.client.cert }, private_key: { filename: o.client.key } }] }),
        ...(o.clientInline === undefined ? {} : { tls_certificates: [{ certificate_chain: { inline_string: o.clientInline.cert }, private_key: { inline_bytes: Buffer.from(o.clientInline.key) } }] }),
        ...(o.ca === undefined ? {} : { validation_context: { trusted_ca: { filename: o.ca }, match_subject_alt_names: (o.sans ?? []).map(exact) } }),
        alpn_protocols: [...(o.alpn ?? [])],
      },
    }),
  };
}

export function hcm(routeName: string): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, {
      stat_prefix: routeName,
      rds: { route_config_name: routeName, config_source: { ads: {} } },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: anyOf(TYPE_URLS.ROUTER, {}) }],
    }),
  };
}

export function tcpProxy(cluster: string): object {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: anyOf(TYPE_URLS.TCP_PROXY, { stat_prefix: cluster, cluster }) };
}

export interface ChainSpec {
  readonly name: string;
  readonly serverNames?: readonly string[];
  readonly tls?: object;
  readonly filter: object;
}

export function listener(name: string, port: number, chains: readonly ChainSpec[]): object {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: anyOf(TYPE_URLS.TLS_INSPECTOR, {}) }],
    filter_chains: chains.map((c) => ({
      name: c.name,
      ...(c.serverNames === undefined ? {} : { filter_chain_match: { server_names: [...c.serverNames] } }),
      ...(c.tls === undefined ? {} : { transport_socket: c.tls }),
      filters: [c.filter],
    })),
  };
}

export interface RouteSpec {
  readonly prefix: string;
  readonly cluster: string;
  /** Envoy `retry_on` (e.g. `connect-failure`), with two retries. */
  readonly retryOn?: string;
}

export function routeConfig(name: string, routes: readonly RouteSpec[], requireTls = false): object {
  return {
    name,
    virtual_hosts: [{
      name: `${name}-vh`,
      domains: ['*'],
      ...(requireTls ? { require_tls: 'ALL' } : {}),
      routes: routes.map((r) => ({ match: { prefix: r.prefix }, route: { cluster: r.cluster, timeout: { seconds: 10 }, ...(r.retryOn === undefined ? {} : { retry_policy: { retry_on: r.retryOn, num_retries: { value: 2 } } }) } })),
    }],
  };
}

/** A STATIC cluster of endpoints on 127.0.0.1 at `port` (or each of `port`). */
export function staticCluster(name: string, port: number | readonly number[], o: { tls?: object; http2?: boolean } = {}): object {
  const ports = typeof port === 'number' ? [port] : port;
  return {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 2 },
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } } })) }] },
    ...(o.http2 === true ? { typed_extension_protocol_options: httpProtocolOptions('http2', undefined) } : {}),
    ...(o.tls === undefined ? {} : { transport_socket: o.tls }),
  };
}

/** A gateway proxy fed by a fake control plane. */
export interface FedGateway {
  readonly cp: FakeControlPlane;
  readonly proxy: Proxy;
  close(): Promise<void>;
}

/** Starts a fake control plane and a gateway proxy connected to it; nothing is sent yet. */
export async function startFedGateway(log = new Logger({ level: 'silent' })): Promise<FedGateway> {
  const cp = await FakeControlPlane.start();
  const proxy = new Proxy({ xds: cp.address, namespace: 'default', bind: '127.0.0.1', inboundPort: 0, outboundPort: 0, adminPort: 0, statsPort: -1, log, type: 'router', id: 'tls-gateway', serviceAccount: 'gw', labels: { istio: 'ingressgateway' } });
  await proxy.start();
  await cp.waitForRequest((r) => r.request.type_url === CDS);
  return {
    cp,
    proxy,
    close: async () => {
      await proxy.close(100);
      await cp.close();
    },
  };
}

/** Sends `resources` of `typeUrl` and waits for the proxy's ACK or NACK of them. */
export async function push(cp: FakeControlPlane, typeUrl: string, version: string, resources: readonly object[]): Promise<{ kind: string; message: string }> {
  const nonce = cp.send(typeUrl, version, resources);
  const r = await cp.waitForRequest((q) => q.request.response_nonce === nonce && q.kind !== 'subscribe');
  return { kind: r.kind, message: r.request.error_detail?.message ?? '' };
}

// ---- backends ----

export interface TlsBackend {
  readonly port: number;
  close(): Promise<void>;
}

function portOf(server: { address(): AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port;
}

function closer(server: HttpsServer | Http2SecureServer | TlsServer, sockets: Set<TLSSocket>): () => Promise<void> {
  return () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
}

/**
 * An HTTPS/1.1 backend answering JSON `{backend, path, headers, sni, clientCert}`;
 * with `ca`, it requires a client certificate that verifies against it.
 */
export async function startHttpsBackend(name: string, pair: PemPair, ca?: string): Promise<TlsBackend> {
  const sockets = new Set<TLSSocket>();
  const server = createHttpsServer({ cert: pair.cert, key: pair.key, ...(ca === undefined ? {} : { ca, requestCert: true, rejectUnauthorized: true }) }, (req, res) => {
    const s = req.socket as TLSSocket;
    const peer = s.getPeerCertificate();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ backend: name, path: req.url, headers: req.headers, sni: s.servername, clientCert: peer?.subjectaltname ?? null }));
  });
  server.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: portOf(server), close: closer(server, sockets) };
}

/** An HTTP/2-over-TLS backend (ALPN h2) answering JSON `{backend, path, scheme}` with a trailer. */
export async function startH2TlsBackend(name: string, pair: PemPair): Promise<TlsBackend> {
  const sockets = new Set<TLSSocket>();
  const server = createSecureServer({ cert: pair.cert, key: pair.key });
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'done' }));
    stream.end(JSON.stringify({ backend: name, path: headers[':path'], alpn: (stream.session?.socket as TLSSocket | undefined)?.alpnProtocol }));
  });
  server.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('sessionError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: portOf(server), close: closer(server, sockets) };
}

/** A TLS echo server: every byte back, prefixed once by `<name>:` (tells which backend answered). */
export async function startTlsEcho(name: string, pair: PemPair): Promise<TlsBackend> {
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer({ cert: pair.cert, key: pair.key }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write(`${name}:`);
    s.pipe(s);
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: portOf(server), close: closer(server, sockets) };
}
