/**
 * Gateway (`networking.istio.io`). Rules after Istio's gateway validation: at least one
 * server, hosts `[namespace/]dnsName` with no short names, a named port, unique port
 * names, TLS settings for HTTPS and TLS servers. Protocols are case-insensitive in Istio
 * and are upper-cased here.
 */
import { exportTo, isDns1123Label, isIP, labels, stringList, wildcardDomainProblem } from '../common.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, object, required } from '../schema/schema.js';
import { boolean, integer, oneOf, port, string } from '../schema/scalars.js';
import { certificateFile } from './certificate-file.js';

export const SERVER_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'REDIS', 'MYSQL', 'TCP', 'TLS'] as const;
export type ServerProtocol = (typeof SERVER_PROTOCOLS)[number];
const PROTOCOL_SET: ReadonlySet<string> = new Set(SERVER_PROTOCOLS);

const protocol: Schema<ServerProtocol> = string({
  check: (v, path, ctx) => {
    if (PROTOCOL_SET.has(v.toUpperCase())) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `invalid protocol "${v}" (one of ${SERVER_PROTOCOLS.join(', ')})`);
    return false;
  },
}) as Schema<ServerProtocol>;

const serverPort = object(
  { number: required(integer({ min: 0, max: 65535 })), protocol: required(protocol), name: required(string({ nonEmpty: 'port name must be set' })), targetPort: port },
  { map: (v) => ({ ...v, protocol: v.protocol.toUpperCase() as ServerProtocol }) },
);

/** `[namespace/]dnsName`: `*` namespace means any, `.` this one; the name may be `*.x` or `*`. */
const serverHost = string({
  nonEmpty: 'host must not be empty',
  check: (v, path, ctx) => {
    const slash = v.indexOf('/');
    const ns = slash >= 0 ? v.slice(0, slash) : '*';
    const name = slash >= 0 ? v.slice(slash + 1) : v;
    if (ns !== '*' && ns !== '.' && !isDns1123Label(ns)) {
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `invalid namespace "${ns}" in host "${v}" (a namespace, "*" or ".")`);
      return false;
    }
    if (isIP(name)) return true;
    const problem = wildcardDomainProblem(name);
    if (problem !== undefined) {
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `invalid host "${v}": ${problem}`);
      return false;
    }
    if (name !== '*' && !name.includes('.')) {
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `short name "${name}" is not allowed in a Gateway host; use a fully qualified name`);
      return false;
    }
    return true;
  },
});

const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;
const tlsVersion = oneOf(TLS_VERSIONS);

type ServerTlsFields = {
  mode?: string;
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  credentialNames?: readonly string[];
  tlsCertificates?: readonly { serverCertificate?: string; privateKey?: string; caCertificates?: string }[];
  caCertCredentialName?: string;
  minProtocolVersion?: (typeof TLS_VERSIONS)[number];
  maxProtocolVersion?: (typeof TLS_VERSIONS)[number];
};

/**
 * Istio's `validateTLSOptions`: a terminating server (SIMPLE, MUTUAL, OPTIONAL_MUTUAL)
 * needs its certificate and key — as files, `tlsCertificates`, or a credentialName, which
 * replaces the file fields — and a mutual one a CA to verify clients against; the maximum
 * protocol version is not below the minimum.
 */
function checkServerTls(v: ServerTlsFields, path: Path, ctx: ParseContext): boolean {
  let ok = true;
  const need = (at: Path, message: string): void => {
    ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, ...at], message);
    ok = false;
  };
  const min = v.minProtocolVersion ?? 'TLS_AUTO';
  const max = v.maxProtocolVersion ?? 'TLS_AUTO';
  if (min !== 'TLS_AUTO' && max !== 'TLS_AUTO' && max < min) {
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'maxProtocolVersion'], `maxProtocolVersion ${max} is below minProtocolVersion ${min}`);
    ok = false;
  }
  const mode = v.mode;
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return ok;
  if (v.credentialName !== undefined || (v.credentialNames ?? []).length > 0) return ok;
  const certs = v.tlsCertificates ?? [];
  if (certs.length > 0) {
    certs.forEach((c, i) => {
      if (c.serverCertificate === undefined) need(['tlsCertificates', i, 'serverCertificate'], `mode ${mode} needs a server certificate`);
      if (c.privateKey === undefined) need(['tlsCertificates', i, 'privateKey'], `mode ${mode} needs the certificate's private key`);
    });
  } else {
    if (v.serverCertificate === undefined) need(['serverCertificate'], `mode ${mode} needs a server certificate (serverCertificate and privateKey, tlsCertificates, or credentialName)`);
    if (v.privateKey === undefined) need(['privateKey'], `mode ${mode} needs the server certificate's private key (privateKey)`);
  }
  const ca = v.caCertificates ?? v.caCertCredentialName ?? certs.find((c) => c.caCertificates !== undefined)?.caCertificates;
  if (mode !== 'SIMPLE' && ca === undefined) need(['caCertificates'], `mode ${mode} needs a CA bundle to verify client certificates (caCertificates)`);
  return ok;
}

const serverTls = object(
  {
    httpsRedirect: boolean,
    mode: oneOf(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']),
    serverCertificate: certificateFile,
    privateKey: certificateFile,
    caCertificates: certificateFile,
    caCrl: certificateFile,
    credentialName: string(),
    credentialNames: stringList,
    tlsCertificates: array(object({ serverCertificate: certificateFile, privateKey: certificateFile, caCertificates: certificateFile })),
    caCertCredentialName: string(),
    subjectAltNames: stringList,
    verifyCertificateSpki: stringList,
    verifyCertificateHash: stringList,
    minProtocolVersion: tlsVersion,
    maxProtocolVersion: tlsVersion,
    cipherSuites: stringList,
  },
  { check: checkServerTls },
);

const server = object(
  {
    port: required(serverPort),
    bind: string(),
    hosts: required(array(serverHost, { min: 1, tooFew: 'a server needs at least one host' })),
    tls: serverTls,
    name: string(),
    defaultEndpoint: string(),
  },
  {
    check: (v, path, ctx) => {
      if (v.port.number === 0 && !(v.bind ?? '').startsWith('unix://')) {
        ctx.report('TRELLIS_CONFIG_OUT_OF_RANGE', [...path, 'port', 'number'], 'must be between 1 and 65535 (got 0); port 0 needs a unix:// bind');
        return false;
      }
      if ((v.port.protocol === 'HTTPS' || v.port.protocol === 'TLS') && v.tls === undefined) {
        ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'tls'], `${v.port.protocol} servers need tls settings (mode and certificates)`);
        return false;
      }
      return true;
    },
  },
);

function serverPortName(raw: unknown): string | undefined {
  const n = (raw as { port?: { name?: unknown } } | null)?.port?.name;
  return typeof n === 'string' ? n : undefined;
}

export const gatewaySpec = object(
  {
    selector: labels,
    servers: required(array(server, { min: 1, tooFew: 'a gateway needs at least one server', uniqueBy: serverPortName, uniqueWhat: 'port name' })),
    exportTo,
  },
  { map: (v) => ({ ...v, selector: v.selector ?? {} }) },
);

export type GatewaySpec = NonNullable<ReturnType<typeof gatewaySpec.parse>>;
export type GatewayServer = GatewaySpec['servers'][number];
export type ServerTlsSettings = NonNullable<GatewayServer['tls']>;
