/**
 * HTTP/1.1 header helpers shared by the head parser, the body framer and the code that
 * forwards messages: byte-class tables (RFC 9110 §5.1, §5.5), hop-by-hop stripping
 * (RFC 9110 §7.6.1) and head serialisation into one buffer (one socket write per head).
 *
 * Header lists are flat arrays `[name, value, name, value, ...]` with lower-cased names,
 * as the parser produces them.
 */

/** Byte classes. A table lookup per byte is cheaper than a chain of comparisons. */
export const CHAR_INVALID = 0;
/** A tchar (RFC 9110 §5.6.2) that is not an upper-case letter. */
export const CHAR_TOKEN = 1;
/** An upper-case ASCII letter (a tchar that lower-casing changes). */
export const CHAR_UPPER = 2;

/** `TCHAR[byte]`: CHAR_INVALID, CHAR_TOKEN or CHAR_UPPER. */
export const TCHAR: Uint8Array = buildTable((c) => {
  if (c >= 0x41 && c <= 0x5a) return CHAR_UPPER;
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) return CHAR_TOKEN;
  return "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)) ? CHAR_TOKEN : CHAR_INVALID;
});

/**
 * Bytes allowed in a Host value: uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2):
 * unreserved, sub-delims, "%" (pct-encoded), ":" and the brackets of an IP-literal.
 * No "@": userinfo is not allowed in Host.
 */
export const HOST_CHAR: Uint8Array = buildTable((c) => {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) return 1;
  return "-._~!$&'()*+,;=%:[]".includes(String.fromCharCode(c)) ? 1 : 0;
});

/**
 * `FIELD_VALUE_CHAR[byte]` is 1 for the bytes of a field value (RFC 9110 §5.5): HTAB, SP,
 * VCHAR and obs-text; 0 for the other control characters (CR and LF included) and DEL.
 * One lookup per byte measured faster than the equivalent comparisons.
 */
export const FIELD_VALUE_CHAR: Uint8Array = buildTable((c) => (c === 0x09 || (c >= 0x20 && c !== 0x7f) ? 1 : 0));

function buildTable(f: (c: number) => number): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = f(c);
  return t;
}

/** Whether `name` is a valid field name (a token). Use at configuration time. */
export function isValidHeaderName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || TCHAR[c] === CHAR_INVALID) return false;
  }
  return true;
}

/**
 * Whether `value` is a valid field value to send: no control characters other than HTAB,
 * no characters outside Latin-1, no leading or trailing whitespace (RFC 9110 §5.5). Use at
 * configuration time: the serialisers do not check again.
 */
export function isValidHeaderValue(value: string): boolean {
  const n = value.length;
  if (n > 0 && (isOws(value.charCodeAt(0)) || isOws(value.charCodeAt(n - 1)))) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Common field names, lower-case. The parser returns these interned strings instead of
 * decoding and lower-casing each name: no allocation, and later lookups (routing, header
 * matchers, hop-by-hop stripping) compare and hash a string whose hash V8 already has.
 * The first six are the fields that decide framing and connection handling; their
 * indexes are the KNOWN_* constants.
 */
export const KNOWN_HEADER_NAMES: readonly string[] = [
  'host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect',
  'user-agent', 'accept', 'accept-encoding', 'accept-language', 'accept-charset', 'accept-ranges',
  'content-type', 'content-encoding', 'content-range', 'content-language', 'content-disposition',
  'cookie', 'set-cookie', 'authorization', 'cache-control', 'pragma', 'referer', 'origin',
  'te', 'trailer', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'via',
  'x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'b3',
  'traceparent', 'tracestate', 'x-envoy-attempt-count', 'x-envoy-expected-rq-timeout-ms',
  'date', 'server', 'etag', 'last-modified', 'expires', 'age', 'vary', 'location',
  'if-none-match', 'if-modified-since', 'if-match', 'range', 'www-authenticate',
  'access-control-allow-origin', 'strict-transport-security', 'x-content-type-options',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-accept', 'sec-websocket-protocol',
  'sec-websocket-extensions', 'grpc-status', 'grpc-message', 'grpc-timeout',
];
export const KNOWN_HOST = 0;
export const KNOWN_CONTENT_LENGTH = 1;
export const KNOWN_TRANSFER_ENCODING = 2;
export const KNOWN_CONNECTION = 3;
export const KNOWN_UPGRADE = 4;
export const KNOWN_EXPECT = 5;

const KNOWN_BYTES: readonly Uint8Array[] = KNOWN_HEADER_NAMES.map((n) => Buffer.from(n, 'latin1'));
/** Indexes into KNOWN_HEADER_NAMES by name length. */
const KNOWN_BY_LENGTH: readonly (readonly number[])[] = (() => {
  const byLength: number[][] = [];
  for (let len = 0; len <= Math.max(...KNOWN_HEADER_NAMES.map((n) => n.length)); len++) byLength.push([]);
  KNOWN_HEADER_NAMES.forEach((n, id) => (byLength[n.length] as number[]).push(id));
  return byLength;
})();

/**
 * The index in KNOWN_HEADER_NAMES of the field name at buf[a, a + length), compared
 * ignoring case, or -1. The bytes must already be valid token characters: `| 0x20` then
 * maps only upper-case letters onto the lower-case letters, digits and "-" of the names.
 */
export function knownHeaderName(buf: Buffer, a: number, length: number): number {
  const ids = KNOWN_BY_LENGTH[length];
  if (ids === undefined) return -1;
  const c0 = (buf[a] as number) | 0x20;
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j] as number;
    const bytes = KNOWN_BYTES[id] as Uint8Array;
    if (bytes[0] !== c0) continue;
    let k = 1;
    while (k < length && ((buf[a + k] as number) | 0x20) === bytes[k]) k++;
    if (k === length) return id;
  }
  return -1;
}

/** Header names that are hop-by-hop whatever the Connection header says (RFC 9110 §7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/**
 * Names that a Connection header may NOT make hop-by-hop. Stripping them would change
 * how the next hop frames or routes the message, while this proxy still frames the body by
 * them: `Connection: content-length` on a request with a body would forward the body bytes
 * without their length, and the upstream would read them as the next request (smuggling).
 */
const NEVER_NOMINATED: ReadonlySet<string> = new Set(['content-length', 'host']);

/** `HOP_BY_HOP.has(name)` by length first: most names are rejected by one comparison. */
export function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 2: return name === 'te';
    case 7: return name === 'upgrade' || name === 'trailer';
    case 10: return name === 'connection' || name === 'keep-alive';
    case 16: return name === 'proxy-connection';
    case 17: return name === 'transfer-encoding';
    case 18: return name === 'proxy-authenticate';
    case 19: return name === 'proxy-authorization';
    default: return false;
  }
}

/**
 * The header list without hop-by-hop fields: the fixed set of `HOP_BY_HOP` and the names
 * listed in the message's Connection header (`connectionTokens`, lower-cased, as the
 * parser reports them), except `content-length` and `host`, which a Connection header
 * cannot remove (see NEVER_NOMINATED).
 *
 * Returns `headers` itself when nothing is removed (the common case: no copy), otherwise a
 * new array; `headers` is never modified. Transfer-Encoding is removed too: a caller that
 * forwards a chunked body unchanged adds `transfer-encoding: chunked` again.
 */
export function stripHopByHop(headers: string[], connectionTokens: readonly string[]): string[] {
  const n = headers.length;
  let i = 0;
  while (i < n && !isStripped(headers[i] as string, connectionTokens)) i += 2;
  if (i >= n) return headers;
  const out = headers.slice(0, i);
  for (i += 2; i < n; i += 2) {
    const name = headers[i] as string;
    if (!isStripped(name, connectionTokens)) out.push(name, headers[i + 1] as string);
  }
  return out;
}

function isStripped(name: string, connectionTokens: readonly string[]): boolean {
  if (isHopByHop(name)) return true;
  return connectionTokens.length !== 0 && connectionTokens.includes(name) && !NEVER_NOMINATED.has(name);
}

/**
 * `METHOD SP target SP HTTP/1.1 CRLF *(name ": " value CRLF) CRLF` as one buffer, so a
 * head is one socket write. Names and values must already be valid (parsed by
 * `h1-parser.ts`, or checked with isValidHeaderName/isValidHeaderValue when the
 * configuration that adds them was compiled): this function does not check them again,
 * and characters above U+00FF are truncated by the Latin-1 encoding.
 */
export function serializeRequestHead(method: string, target: string, headers: readonly string[]): Buffer {
  return Buffer.from(method + ' ' + target + ' HTTP/1.1\r\n' + joinHeaders(headers), 'latin1');
}

/** `HTTP/1.1 SP status SP reason CRLF *(field CRLF) CRLF` as one buffer; see serializeRequestHead. */
export function serializeResponseHead(status: number, reason: string, headers: readonly string[]): Buffer {
  return Buffer.from('HTTP/1.1 ' + status + ' ' + reason + '\r\n' + joinHeaders(headers), 'latin1');
}

/**
 * The field lines and the final empty line. One string built by concatenation (V8 keeps a
 * rope and flattens it once in Buffer.from); measured faster than writing each piece into
 * a preallocated buffer for heads of a few hundred bytes.
 */
function joinHeaders(headers: readonly string[]): string {
  let s = '';
  const n = headers.length - 1;
  for (let i = 0; i < n; i += 2) s += headers[i] + ': ' + headers[i + 1] + '\r\n';
  return s + '\r\n';
}
