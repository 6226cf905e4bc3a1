/**
 * TLS contexts compiled when a Listener or Cluster arrives: Envoy's DownstreamTlsContext
 * (termination) and UpstreamTlsContext (origination) become Node TLS options and a
 * checked `SecureContext`, so a connection only looks them up. Material (certificate
 * chains, keys, CA bundles) comes from a `TlsMaterial` read once here from the
 * DataSources; a context is a plain object built from `(settings, material)`, so an
 * SDS-fed provider can later build a new one from rotated secrets and swap it in (the
 * listener's TLS server takes it with `setSecureContext`, a pool key changes with it).
 *
 * Verification follows Envoy: with a validation_context the peer's chain must verify
 * against `trusted_ca` (or Node's bundled roots for `system_root_certs`), and with
 * `match_subject_alt_names` one SAN must match; the hostname itself is never checked.
 * Without a validation_context nothing is verified.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect, createSecureContext, type PeerCertificate, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { CommonTlsContext__Output } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.js';
import type { CertificateValidationContext__Output } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CertificateValidationContext.js';
import type { DownstreamTlsContext__Output } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.js';
import type { UpstreamTlsContext__Output } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { unpack } from '../config/unpack.js';
import { PEM_KINDS, readPem } from './data-source.js';
import { filesOf, type RotatableTls, sameMaterial, type TlsFiles } from './rotatable.js';
import { noIdentityCheck, SanMatcher } from './san-matcher.js';

const RAW_BUFFER = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

/** Envoy's TlsProtocol names → Node's; TLS_AUTO (and unset) leaves Node's default. */
const VERSIONS: Readonly<Record<string, SecureContextOptions['minVersion']>> = {
  TLSv1_0: 'TLSv1',
  TLSv1_1: 'TLSv1.1',
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};

/** The certificates and keys of a context, as PEM text. What an SDS secret would provide instead of files. */
export interface TlsMaterial {
  /** One chain per `tls_certificates` entry, with its key at the same index. */
  readonly chains: readonly string[];
  readonly keys: readonly string[];
  /** `trusted_ca`; null for Node's bundled roots (`system_root_certs`) or no validation. */
  readonly ca: string | null;
}

/** How a context verifies its peer. */
export interface PeerValidation {
  /** A validation_context is present: the peer's chain must verify (if it presents one, downstream). */
  readonly verify: boolean;
  /** `match_subject_alt_names`; null when none (no name check). */
  readonly san: SanMatcher | null;
}

type Common = Partial<CommonTlsContext__Output> | null | undefined;

/** Rejects what this proxy does not do yet, with the field named. */
function unsupported(common: Common, path: string): void {
  if ((common?.tls_certificate_sds_secret_configs?.length ?? 0) > 0) {
    throw new Error(`${path}.tls_certificate_sds_secret_configs: SDS is not supported yet; give tls_certificates as files or inline`);
  }
  const v = common?.validation_context_type;
  if (v === 'validation_context_sds_secret_config' || v === 'combined_validation_context' || common?.validation_context_sds_secret_config != null || common?.combined_validation_context != null) {
    throw new Error(`${path}.validation_context_sds_secret_config: SDS is not supported yet; give validation_context.trusted_ca as a file or inline`);
  }
  if (v === 'validation_context_certificate_provider' || v === 'validation_context_certificate_provider_instance' || common?.tls_certificate_certificate_provider_instance != null || common?.tls_certificate_provider_instance != null || common?.tls_certificate_certificate_provider != null) {
    throw new Error(`${path}: certificate providers are not supported`);
  }
}

/** Reads the material of `common` (files read now). Throws naming the field and file. */
export function readMaterial(common: Common, path: string): TlsMaterial {
  unsupported(common, path);
  const chains: string[] = [];
  const keys: string[] = [];
  (common?.tls_certificates ?? []).forEach((c, i) => {
    const at = `${path}.tls_certificates[${i}]`;
    chains.push(readPem(c.certificate_chain, `${at}.certificate_chain`, PEM_KINDS.certificates));
    keys.push(readPem(c.private_key, `${at}.private_key`, PEM_KINDS.privateKey));
  });
  const vc = common?.validation_context;
  const ca = vc?.trusted_ca != null && hasSource(vc.trusted_ca) ? readPem(vc.trusted_ca, `${path}.validation_context.trusted_ca`, PEM_KINDS.certificates) : null;
  return { chains, keys, ca };
}

function hasSource(ds: object): boolean {
  const d = ds as Record<string, unknown>;
  return Boolean(d.filename) || Boolean(d.inline_string) || (d.inline_bytes != null && (d.inline_bytes as { length: number }).length > 0);
}

function validationOf(vc: CertificateValidationContext__Output | null | undefined): PeerValidation {
  if (vc == null) return { verify: false, san: null };
  const matchers = vc.match_subject_alt_names ?? [];
  return { verify: true, san: matchers.length > 0 ? new SanMatcher(matchers) : null };
}

/** Node SecureContext options of `common` with `material`: versions, ciphers, certificates, CA. */
function contextOptions(common: Common, material: TlsMaterial): SecureContextOptions {
  const p = common?.tls_params;
  const options: SecureContextOptions = {};
  const min = VERSIONS[p?.tls_minimum_protocol_version ?? ''];
  const max = VERSIONS[p?.tls_maximum_protocol_version ?? ''];
  if (min !== undefined) options.minVersion = min;
  if (max !== undefined) options.maxVersion = max;
  if ((p?.cipher_suites?.length ?? 0) > 0) options.ciphers = (p?.cipher_suites as string[]).join(':');
  if (material.chains.length > 0) {
    options.cert = [...material.chains];
    options.key = [...material.keys];
  }
  if (material.ca !== null) options.ca = material.ca;
  return options;
}

/** Checks that Node accepts the options (key matches certificate, known ciphers, versions in order). */
function checked(options: SecureContextOptions, path: string): SecureContext {
  try {
    return createSecureContext(options);
  } catch (err) {
    const e = err as { message?: string; code?: string };
    throw new Error(`${path}: the TLS settings are not usable: ${e.code ?? ''} ${e.message ?? ''}`.trim());
  }
}

/** A short stable digest of what makes a context: connections made with equal keys are interchangeable. */
function digest(settings: unknown, material: TlsMaterial): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(settings, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
  for (const part of [...material.chains, ...material.keys, material.ca ?? '']) h.update('\0').update(part);
  return h.digest('base64url').slice(0, 16);
}

// ---- termination ----

type ServerOptions = SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean; ALPNProtocols?: string[] };

/**
 * A filter chain's DownstreamTlsContext, compiled. Its material can be rotated while it
 * serves: the chain's terminating servers (`attach`) get the new SecureContext with
 * `setSecureContext`, so new handshakes present the new certificate and established
 * connections are untouched. Peer validation (SAN matchers, client certificates
 * required) comes from the settings, not the material, and does not change.
 */
export class DownstreamTls implements RotatableTls {
  /** `require_client_certificate`: the handshake fails without a valid client certificate (MUTUAL). */
  readonly requireClientCertificate: boolean;
  readonly validation: PeerValidation;
  readonly files: TlsFiles;
  readonly #common: Common;
  readonly #path: string;
  readonly #servers = new Set<TlsServer>();
  #material: TlsMaterial;
  #serverOptions: ServerOptions;

  constructor(ctx: Partial<DownstreamTlsContext__Output>, path: string, material?: TlsMaterial) {
    const common = ctx.common_tls_context;
    this.#common = common;
    this.#path = path;
    this.files = filesOf(common);
    this.validation = validationOf(common?.validation_context);
    this.requireClientCertificate = ctx.require_client_certificate?.value === true;
    if (this.requireClientCertificate && !this.validation.verify) throw new Error(`${path}.require_client_certificate: needs common_tls_context.validation_context to verify client certificates with`);
    this.#material = material ?? this.read();
    this.#serverOptions = this.#optionsFor(this.#material);
  }

  /** Options for a new terminating `tls.Server` (it builds its SecureContext from them). */
  get serverOptions(): ServerOptions {
    return this.#serverOptions;
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** Makes `server` (terminating this context) follow its rotations. */
  attach(server: TlsServer): void {
    this.#servers.add(server);
  }

  read(): TlsMaterial {
    return readMaterial(this.#common, `${this.#path}.common_tls_context`);
  }

  rotate(material: TlsMaterial): boolean {
    if (sameMaterial(material, this.#material)) return false;
    const options = this.#optionsFor(material); // throws: the current material serves on
    for (const s of this.#servers) s.setSecureContext(options);
    this.#material = material;
    this.#serverOptions = options;
    return true;
  }

  /** The server options for `m`, checked as Node will use them. */
  #optionsFor(m: TlsMaterial): ServerOptions {
    const path = this.#path;
    if (m.chains.length === 0) throw new Error(`${path}.common_tls_context.tls_certificates: a terminating TLS context needs a certificate`);
    const options = contextOptions(this.#common, m);
    checked(options, `${path}.common_tls_context`);
    const alpn = this.#common?.alpn_protocols ?? [];
    return { ...options, requestCert: this.validation.verify, rejectUnauthorized: this.requireClientCertificate, ...(alpn.length > 0 ? { ALPNProtocols: [...alpn] } : {}) };
  }
}

/**
 * After a terminating handshake: whether the client may go on. A client certificate that
 * was presented must have verified (OPTIONAL_MUTUAL: none at all is fine; MUTUAL: the
 * handshake already failed without one) and match the SAN matchers.
 */
export function clientAccepted(tls: DownstreamTls, socket: TLSSocket): boolean {
  if (!tls.validation.verify) return true;
  const cert = socket.getPeerCertificate();
  const presented = cert !== null && Object.keys(cert).length > 0;
  if (!presented) return !tls.requireClientCertificate;
  if (!socket.authorized) return false;
  return tls.validation.san === null || tls.validation.san.accepts(cert);
}

// ---- origination ----

/** A cluster's UpstreamTlsContext, compiled: how its pools open connections. */
export class UpstreamTls {
  /** Equal for equal settings and material: pools are keyed by it, so differently configured clusters never share a connection. */
  readonly key: string;
  readonly secureContext: SecureContext;
  /** SNI to send; undefined when `sni` is empty or an IP address. */
  readonly servername: string | undefined;
  readonly alpn: readonly string[];
  readonly validation: PeerValidation;
  readonly checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
  /** What it was built from; a rotation builds a new UpstreamTls (and so a new key: new pools). */
  readonly material: TlsMaterial;

  constructor(ctx: Partial<UpstreamTlsContext__Output>, path: string, material?: TlsMaterial) {
    const common = ctx.common_tls_context;
    const m = material ?? readMaterial(common, `${path}.common_tls_context`);
    this.material = m;
    this.validation = validationOf(common?.validation_context);
    this.secureContext = checked(contextOptions(common, m), `${path}.common_tls_context`);
    const sni = ctx.sni ?? '';
    this.servername = sni === '' || isIP(sni) !== 0 ? undefined : sni;
    this.alpn = [...(common?.alpn_protocols ?? [])];
    const san = this.validation.san;
    this.checkServerIdentity = san === null ? noIdentityCheck : (_host, cert) => san.check(cert);
    this.key = digest(ctx, m);
  }

  /** A TLS connection to `address:port` (the handshake starts once TCP connects). `alpn` overrides the context's (HTTP/2 pools need h2). */
  connect(address: string, port: number, alpn: readonly string[] = this.alpn): TLSSocket {
    // noDelay and keepAlive reach net.Socket#connect as for net.connect (the types omit them).
    const options: ConnectionOptions & { noDelay: boolean; keepAlive: boolean } = {
      host: address,
      port,
      noDelay: true,
      keepAlive: true,
      secureContext: this.secureContext,
      rejectUnauthorized: this.validation.verify,
      checkServerIdentity: this.checkServerIdentity,
      ...(this.servername === undefined ? {} : { servername: this.servername }),
      ...(alpn.length > 0 ? { ALPNProtocols: [...alpn] } : {}),
    };
    return tlsConnect(options);
  }
}

/**
 * Why a TLS connection failed before it was up, as `tlsFailureReason` words it, when the
 * error is its handshake's (certificate, protocol); null for a socket error (those carry
 * a `syscall`: a refused or reset connection is a plain connect failure).
 */
export function handshakeFailure(err: Error): string | null {
  return (err as NodeJS.ErrnoException).syscall === undefined ? tlsFailureReason(err) : null;
}

/**
 * Envoy's transport failure reason for a TLS error, `TLS_error:<reason>`: the OpenSSL (or
 * verification) code and what it says. Never includes key material.
 */
export function tlsFailureReason(err: unknown): string {
  const e = err as { code?: string; reason?: string; message?: string };
  const what = e.reason ?? e.message ?? 'handshake failed';
  return `TLS_error:${e.code ?? 'TLS_HANDSHAKE_FAILED'}: ${what}`;
}

// ---- transport sockets ----

export type TransportSocket = { name?: string; typed_config?: unknown } | null | undefined;

/**
 * The TLS context in a transport socket: the decoded DownstreamTlsContext or
 * UpstreamTlsContext (by `typeUrl`), or null for none (absent, or raw_buffer). Throws
 * for other transport sockets: serving in plaintext what was meant to be TLS is worse
 * than a NACK.
 */
export function tlsContextOf<T>(ts: TransportSocket, typeUrl: string, path: string): Partial<T> | null {
  if (ts == null) return null;
  const cfg = unpack(ts.typed_config);
  if (cfg === undefined) {
    if (ts.name === 'envoy.transport_sockets.raw_buffer' || ts.typed_config == null) return null;
    throw new Error(`${path}: transport socket "${ts.name ?? ''}" cannot be decoded`);
  }
  if (cfg.type === RAW_BUFFER) return null;
  if (cfg.type !== typeUrl) throw new Error(`${path}: transport socket type ${cfg.type} is not supported here (expected ${typeUrl})`);
  return cfg.value as Partial<T>;
}

/** A Listener filter chain's DownstreamTlsContext, compiled, or null (plaintext). */
export function downstreamTlsOf(ts: TransportSocket, path: string): DownstreamTls | null {
  const ctx = tlsContextOf<DownstreamTlsContext__Output>(ts, TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, path);
  return ctx === null ? null : new DownstreamTls(ctx, `${path}.typed_config`);
}
