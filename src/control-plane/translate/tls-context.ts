/**
 * Envoy TLS transport sockets from Istio's TLS settings, as Trellis's xDS contract for
 * TLS writes them (the proxy reads exactly these fields):
 *
 * - `UpstreamTlsContext` on an outbound cluster, from a DestinationRule `tls` with mode
 *   SIMPLE or MUTUAL (TLS origination): SNI (the rule's `sni`, else the service's host),
 *   the client certificate for MUTUAL, and a validation context — the CA file, else the
 *   system's roots — unless `insecureSkipVerify`;
 * - `DownstreamTlsContext` on a gateway filter chain, from a Gateway server `tls` with mode
 *   SIMPLE, MUTUAL or OPTIONAL_MUTUAL (termination).
 *
 * Certificates are `DataSource {filename}`: Istio's file-path fields, read by the proxy.
 * ISTIO_MUTUAL and `credentialName` need the mesh CA and SDS, which this translation does
 * not have yet: they get no transport socket (coverage.ts reports them as not translated).
 */
import type { ServerTlsSettings } from '../../api/networking/gateway.js';
import type { TrafficPolicy } from '../../api/networking/destination-rule.js';
import type { TransportSocket } from '../../xds/generated/envoy/config/core/v3/TransportSocket.js';
import type { CertificateValidationContext } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CertificateValidationContext.js';
import type { CommonTlsContext } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.js';
import type { TlsCertificate } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/TlsCertificate.js';
import type { TlsParameters } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/TlsParameters.js';
import { anyOf } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';

export type ClientTlsSettings = NonNullable<TrafficPolicy['tls']>;

const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';

/** What the connection carries, which decides the ALPN a TLS context offers. */
export const TLS_APPLICATION = { http1: 'http1', http2: 'http2', http: 'http', none: 'none' } as const;
export type TlsApplication = (typeof TLS_APPLICATION)[keyof typeof TLS_APPLICATION];

const ALPN: Readonly<Record<TlsApplication, readonly string[]>> = {
  http1: ['http/1.1'],
  http2: ['h2'],
  http: ['h2', 'http/1.1'],
  none: [],
};

/** Istio's TLS version names to Envoy's `TlsParameters.TlsProtocol`; TLS_AUTO sets no bound. */
const TLS_VERSION: Readonly<Record<string, TlsParameters['tls_minimum_protocol_version']>> = {
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

/** Istio's gateway default minimum (`tls_minimum_protocol_version` TLSv1_2, server side). */
const DEFAULT_SERVER_MIN_VERSION = 'TLSV1_2';

function file(filename: string): { filename: string } {
  return { filename };
}

function transportSocket(typeUrl: string, context: object): TransportSocket {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: anyOf(typeUrl, context) };
}

function sanMatchers(sans: readonly string[] | undefined): Pick<CertificateValidationContext, 'match_subject_alt_names'> {
  return sans === undefined || sans.length === 0 ? {} : { match_subject_alt_names: sans.map((exact) => ({ exact })) };
}

function withAlpn(common: CommonTlsContext, application: TlsApplication): CommonTlsContext {
  const alpn = ALPN[application];
  return alpn.length === 0 ? common : { ...common, alpn_protocols: [...alpn] };
}

/** Whether a DestinationRule `tls` originates TLS that this translation can write. */
export function originatesTls(tls: ClientTlsSettings | undefined): tls is ClientTlsSettings {
  return (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') && tls.credentialName === undefined;
}

/**
 * The cluster's `transport_socket` for a DestinationRule `tls`, or undefined when it
 * originates no TLS (DISABLE, no tls) or one not translated yet (ISTIO_MUTUAL,
 * credentialName). `host` is the destination service's hostname, the default SNI.
 */
export function upstreamTransportSocket(tls: ClientTlsSettings | undefined, host: string, application: TlsApplication): TransportSocket | undefined {
  if (!originatesTls(tls)) return undefined;
  const common: CommonTlsContext = {};
  if (tls.mode === 'MUTUAL' && tls.clientCertificate !== undefined && tls.privateKey !== undefined) {
    common.tls_certificates = [{ certificate_chain: file(tls.clientCertificate), private_key: file(tls.privateKey) }];
  }
  if (tls.insecureSkipVerify !== true) {
    // Without a CA file the peer is verified against the system's roots (Istio's
    // VERIFY_CERTIFICATE_AT_CLIENT default), not left unverified.
    const trust: CertificateValidationContext = tls.caCertificates === undefined ? { system_root_certs: {} } : { trusted_ca: file(tls.caCertificates) };
    common.validation_context = { ...trust, ...sanMatchers(tls.subjectAltNames) };
  }
  return transportSocket(TYPE_URLS.UPSTREAM_TLS_CONTEXT, { sni: tls.sni ?? host, common_tls_context: withAlpn(common, application) });
}

/** Whether a Gateway server's `tls` terminates TLS that this translation can write. */
export function terminatesTls(tls: ServerTlsSettings | undefined): tls is ServerTlsSettings {
  if (tls === undefined) return false;
  if (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL' && tls.mode !== 'OPTIONAL_MUTUAL') return false;
  return tls.credentialName === undefined && (tls.credentialNames ?? []).length === 0 && serverCertificates(tls).length > 0;
}

function serverCertificates(tls: ServerTlsSettings): TlsCertificate[] {
  const list = tls.tlsCertificates ?? [];
  if (list.length > 0) {
    return list.flatMap((c) => (c.serverCertificate === undefined || c.privateKey === undefined ? [] : [{ certificate_chain: file(c.serverCertificate), private_key: file(c.privateKey) }]));
  }
  if (tls.serverCertificate === undefined || tls.privateKey === undefined) return [];
  return [{ certificate_chain: file(tls.serverCertificate), private_key: file(tls.privateKey) }];
}

function tlsParams(tls: ServerTlsSettings): TlsParameters {
  const out: TlsParameters = {};
  const min = TLS_VERSION[tls.minProtocolVersion ?? DEFAULT_SERVER_MIN_VERSION];
  const max = TLS_VERSION[tls.maxProtocolVersion ?? 'TLS_AUTO'];
  if (min !== undefined) out.tls_minimum_protocol_version = min;
  if (max !== undefined) out.tls_maximum_protocol_version = max;
  if ((tls.cipherSuites ?? []).length > 0) out.cipher_suites = [...(tls.cipherSuites ?? [])];
  return out;
}

/**
 * A gateway filter chain's `transport_socket` for a server's `tls` (SIMPLE, MUTUAL,
 * OPTIONAL_MUTUAL with file certificates): `http` for HTTPS servers offers ALPN h2 and
 * http/1.1; `none` for TLS servers (terminated TCP) offers none.
 */
export function downstreamTransportSocket(tls: ServerTlsSettings, application: TlsApplication): TransportSocket | undefined {
  if (!terminatesTls(tls)) return undefined;
  const common: CommonTlsContext = { tls_params: tlsParams(tls), tls_certificates: serverCertificates(tls) };
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  const ca = tls.caCertificates ?? tls.tlsCertificates?.find((c) => c.caCertificates !== undefined)?.caCertificates;
  if (mutual && ca !== undefined) common.validation_context = { trusted_ca: file(ca), ...sanMatchers(tls.subjectAltNames) };
  const context: Record<string, unknown> = { common_tls_context: withAlpn(common, application) };
  if (tls.mode === 'MUTUAL') context.require_client_certificate = { value: true };
  return transportSocket(TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, context);
}
