/**
 * Reads the server name (SNI) and the offered application protocols (ALPN) from the
 * first bytes of a TLS connection without terminating it, as Envoy's tls_inspector
 * listener filter does, so a filter chain can be chosen by `server_names` and
 * `application_protocols` (TLS passthrough at gateways). Only the ClientHello is read;
 * nothing is decrypted and the bytes are handed on unchanged.
 *
 * Layout (RFC 8446 §4.1.2, §5.1; SNI RFC 6066 §3; ALPN RFC 7301 §3.1):
 *   record:    type(1)=22 version(2) length(2) fragment
 *   handshake: type(1)=1 length(3) legacy_version(2) random(32) session_id<1> cipher_suites<2>
 *              compression_methods<1> extensions<2>
 *   extension: type(2) length(2) data; server_name=0, application_layer_protocol_negotiation=16
 * A ClientHello larger than one record (16 KiB) is not reassembled: such hellos do not
 * occur in practice, and the connection is then treated as having no SNI.
 */

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const SNI_HOST_NAME = 0;
const RECORD_HEADER_BYTES = 5;
/** The largest TLS plaintext record (RFC 8446 §5.1). */
export const MAX_RECORD_BYTES = 16_384;

export interface ClientHelloInfo {
  /** Lower-cased server name, when the client sent one. */
  readonly serverName: string | undefined;
  /** Protocols offered by ALPN, in the client's order (empty without ALPN). */
  readonly alpn: readonly string[];
}

/** `tls` with what the hello says; `not-tls` when the bytes are not a TLS handshake; `incomplete` to wait for more. */
export type HelloResult = { readonly kind: 'tls'; readonly hello: ClientHelloInfo } | { readonly kind: 'not-tls' } | { readonly kind: 'incomplete' };

const NOT_TLS: HelloResult = { kind: 'not-tls' };
const INCOMPLETE: HelloResult = { kind: 'incomplete' };
const NO_HELLO: HelloResult = { kind: 'tls', hello: { serverName: undefined, alpn: [] } };

/** Inspects the first bytes a client sent. */
export function inspectClientHello(buf: Buffer): HelloResult {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] !== RECORD_HANDSHAKE) return NOT_TLS;
  if (buf.length < RECORD_HEADER_BYTES) return buf[1] === undefined || buf[1] === 3 ? INCOMPLETE : NOT_TLS;
  if (buf[1] !== 3) return NOT_TLS; // record versions are 3.x (TLS 1.0 = 3.1 ... ; SSL 3 = 3.0)
  const recordLength = buf.readUInt16BE(3);
  if (recordLength > MAX_RECORD_BYTES + 2048) return NOT_TLS;
  if (buf.length < RECORD_HEADER_BYTES + recordLength) return INCOMPLETE;
  const hello = parseHandshake(buf.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + recordLength));
  return hello === undefined ? NO_HELLO : { kind: 'tls', hello };
}

/** A cursor over a byte range; every read is bounds-checked (a short read yields undefined). */
class Reader {
  pos: number;
  readonly end: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }
  u8(): number | undefined {
    if (this.pos + 1 > this.end) return undefined;
    return this.buf[this.pos++];
  }
  u16(): number | undefined {
    if (this.pos + 2 > this.end) return undefined;
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  skip(n: number | undefined): boolean {
    if (n === undefined || this.pos + n > this.end) return false;
    this.pos += n;
    return true;
  }
  /** A sub-reader over the next `n` bytes, which this reader then skips. */
  sub(n: number | undefined): Reader | undefined {
    if (n === undefined || this.pos + n > this.end) return undefined;
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
}

function parseHandshake(fragment: Buffer): ClientHelloInfo | undefined {
  if (fragment.length < 4 || fragment[0] !== HANDSHAKE_CLIENT_HELLO) return undefined;
  const length = fragment.readUIntBE(1, 3);
  // The hello may continue in the next record; read what this one holds.
  const r = new Reader(fragment, 4, Math.min(fragment.length, 4 + length));
  if (!r.skip(2 + 32)) return undefined; // legacy_version, random
  if (!r.skip(r.u8())) return undefined; // session id
  if (!r.skip(r.u16())) return undefined; // cipher suites
  if (!r.skip(r.u8())) return undefined; // compression methods
  const exts = r.sub(r.u16());
  if (exts === undefined) return undefined;
  let serverName: string | undefined;
  let alpn: string[] = [];
  while (exts.pos < exts.end) {
    const type = exts.u16();
    const data = exts.sub(exts.u16());
    if (type === undefined || data === undefined) break;
    if (type === EXT_SERVER_NAME) serverName = readServerName(data);
    else if (type === EXT_ALPN) alpn = readAlpn(data);
  }
  return { serverName, alpn };
}

function readServerName(r: Reader): string | undefined {
  const list = r.sub(r.u16());
  while (list !== undefined && list.pos < list.end) {
    const kind = list.u8();
    const name = list.sub(list.u16());
    if (kind === undefined || name === undefined) return undefined;
    if (kind === SNI_HOST_NAME) return name.buf.toString('latin1', name.pos, name.end).toLowerCase();
  }
  return undefined;
}

function readAlpn(r: Reader): string[] {
  const out: string[] = [];
  const list = r.sub(r.u16());
  while (list !== undefined && list.pos < list.end) {
    const p = list.sub(list.u8());
    if (p === undefined) break;
    out.push(p.buf.toString('latin1', p.pos, p.end));
  }
  return out;
}
