/**
 * The HTTP/1.1 head parser of the proxy: request and response heads (start line and
 * header fields, RFC 9112 §2–§5), parsed straight from the socket's bytes. Bodies are not
 * parsed here: `h1-body.ts` frames them without copying.
 *
 * Stateless and incremental: call `parseRequestHead(buf, start)` with the bytes received
 * so far; when it answers `incomplete`, call it again from the same `start` once more
 * bytes have arrived. The answer for a prefix is either `incomplete` or exactly the answer
 * for the whole input, so a caller may act on the first non-`incomplete` answer. Each call
 * re-scans from `start`: callers should call again only when the new bytes contain an LF
 * (a line may have ended) or the buffered bytes exceed `maxHeadBytes` (431). That bounds
 * the work per head to about (maxHeaders + 2) scans of at most maxHeadBytes, instead of
 * one scan per received byte under a slow-drip client.
 *
 * Strict, as a proxy must be against request smuggling (RFC 9112 §11.2): anything that
 * two implementations could frame differently is rejected, and the connection is closed
 * after the error response. Errors are detected left to right, as soon as the bytes that
 * decide them are present, so a prefix never gives a different error than the whole head.
 *
 * Hot path (DESIGN.md "Hot path rules"): no regular expressions and no closures; bytes
 * are validated with table lookups and field positions recorded in a scratch Int32Array;
 * only a complete head is decoded, with ONE Latin-1 slice, names and values being
 * substrings of it; common names (KNOWN_HEADER_NAMES) and methods are interned strings,
 * other names are lower-cased only when they contain an upper-case letter; one head
 * object per message, created by one literal. `bench/h1-parser.ts` measures it.
 */
import {
  CHAR_INVALID,
  CHAR_UPPER,
  FIELD_VALUE_CHAR,
  HOST_CHAR,
  KNOWN_CONNECTION,
  KNOWN_CONTENT_LENGTH,
  KNOWN_EXPECT,
  KNOWN_HEADER_NAMES,
  KNOWN_HOST,
  KNOWN_TRANSFER_ENCODING,
  KNOWN_UPGRADE,
  TCHAR,
  knownHeaderName,
} from './headers.js';

export interface ParseLimits {
  /** Bytes of the head, leading empty lines and the final CRLFCRLF included. Envoy's max_request_headers_kb defaults to 60. */
  readonly maxHeadBytes: number;
  /** Header field lines (duplicates count; a folded duplicate Content-Length too). Envoy's max_headers_count defaults to 100. */
  readonly maxHeaders: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = Object.freeze({ maxHeadBytes: 60 * 1024, maxHeaders: 100 });

/**
 * Empty lines (CRLF) accepted before a request line. RFC 9112 §2.2: a server SHOULD
 * ignore at least one, which some clients send after a POST body; more than a few is not
 * a client bug but garbage, and is answered with 400. Responses accept none.
 */
export const MAX_LEADING_EMPTY_LINES = 4;

/** The head of a request, as sent. Created once per request by the parser; the caller owns it. */
export interface RequestHead {
  /** Token, as sent (methods are case-sensitive); common methods are interned strings. */
  method: string;
  /**
   * The request-target as sent: origin-form `/a?b`, absolute-form `http://h:80/a`,
   * authority-form `h:443` (CONNECT only) or `*` (OPTIONS only). Bytes 0x80-0xFF are
   * accepted (Latin-1 here, so they are re-sent unchanged); controls, SP and DEL are not.
   */
  target: string;
  versionMinor: 0 | 1;
  /** Flat `[name, value, ...]`: names lower-cased, values without surrounding OWS, order kept, duplicates kept except identical Content-Length fields (folded into the first). */
  headers: string[];
  /** The Host value; exactly one Host field is allowed (and required in HTTP/1.1). */
  host: string | undefined;
  /** -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding is present and its (only) coding is chunked. */
  chunked: boolean;
  /** HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`. */
  keepAlive: boolean;
  /** The Upgrade value when Connection lists `upgrade` (HTTP/1.1 only, RFC 9110 §7.8). */
  upgrade: string | undefined;
  /** `Expect: 100-continue` in an HTTP/1.1 request (ignored in HTTP/1.0, RFC 9110 §10.1.1). */
  expectContinue: boolean;
  /** Lower-cased tokens of all Connection fields, for hop-by-hop stripping. */
  connectionTokens: string[];
  /** Bytes of the head from `start`, leading empty lines and the final CRLFCRLF included. */
  headBytes: number;
}

/** The head of a response; fields as in RequestHead. */
export interface ResponseHead {
  status: number;
  reason: string;
  versionMinor: 0 | 1;
  headers: string[];
  /** -1 when absent, and always -1 in a 2xx answer to CONNECT (RFC 9110 §9.3.6: ignored). */
  contentLength: number;
  chunked: boolean;
  /** As for requests, and false when the body is delimited by the connection closing. */
  keepAlive: boolean;
  upgrade: string | undefined;
  connectionTokens: string[];
  headBytes: number;
}

/**
 * `status` is what to answer the downstream client for a request head. For a response
 * head the proxy answers its client 502 instead (Envoy: upstream protocol error, flag UPE);
 * `status` then only classifies the fault. Either way the connection is closed.
 */
export type HeadResult<H> =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'head'; readonly head: H }
  | { readonly kind: 'error'; readonly status: 400 | 431 | 501 | 505; readonly reason: string };

type ErrorStatus = 400 | 431 | 501 | 505;

const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const COLON = 0x3a;
const DEL = 0x7f;
const DIGIT_0 = 0x30;

const INCOMPLETE: HeadResult<never> = Object.freeze({ kind: 'incomplete' });

interface Latin1Buffer extends Buffer {
  /** Node's Buffer.prototype.latin1Slice: what toString('latin1', a, b) calls, without the encoding dispatch. */
  latin1Slice(start: number, end: number): string;
}

function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as Latin1Buffer).latin1Slice(start, end);
}

/** What scanning returns instead of a position: more bytes are needed, or `state.status/reason` hold an error. */
const NEED_MORE = -1;
const FAILED = -2;

// Field records in ParseState.fields: six int32 per field line; offsets are relative to
// the start of the head (so they fit whatever the buffer's size, and index the decoded head).
const F_NAME_START = 0;
const F_NAME_END = 1;
const F_VALUE_START = 2;
const F_VALUE_END = 3;
const F_FLAGS = 4;
/** Index in KNOWN_HEADER_NAMES, or -1. */
const F_KNOWN = 5;
const F_SIZE = 6;
// F_FLAGS bits.
const FLAG_UPPER = 1; // the name has upper-case letters
const FLAG_FOLDED = 2; // a duplicate Content-Length equal to the first: dropped
const FLAG_HOST = 4;
const FLAG_CONNECTION = 8;
const FLAG_UPGRADE = 16;

/**
 * Per-parse scratch state, reset at the start of each parse. One module-level instance:
 * parsing is synchronous and never re-entered, and this keeps the scan free of
 * allocations. The scan validates bytes and records where each field is; strings are made
 * only once the head is complete, by one Latin-1 decode of the whole head and substrings
 * of it (a native latin1Slice call costs ~80 ns, a substring ~10 ns).
 */
class ParseState {
  isRequest = true;
  /** A CONNECT 2xx response: Content-Length and Transfer-Encoding are ordinary fields. */
  ignoreFraming = false;
  fields = new Int32Array(F_SIZE * DEFAULT_PARSE_LIMITS.maxHeaders);
  fieldCount = 0;
  contentLength = -1;
  teFields = 0;
  teChunked = 0;
  teLastChunked = false;
  teOther = false;
  hostCount = 0;
  expectContinue = false;
  status: ErrorStatus = 400;
  reason = '';
  // Filled by buildHeaders from the decoded head.
  host: string | undefined = undefined;
  connectionTokens: string[] | null = null;
  connClose = false;
  connKeepAlive = false;
  connUpgrade = false;
  upgrade: string | undefined = undefined;

  reset(isRequest: boolean, maxHeaders: number): void {
    this.isRequest = isRequest;
    this.ignoreFraming = false;
    if (this.fields.length < F_SIZE * maxHeaders) this.fields = new Int32Array(F_SIZE * maxHeaders);
    this.fieldCount = 0;
    this.contentLength = -1;
    this.teFields = 0;
    this.teChunked = 0;
    this.teLastChunked = false;
    this.teOther = false;
    this.hostCount = 0;
    this.expectContinue = false;
    this.host = undefined;
    this.connectionTokens = null;
    this.connClose = false;
    this.connKeepAlive = false;
    this.connUpgrade = false;
    this.upgrade = undefined;
  }

  fail(status: ErrorStatus, reason: string): number {
    this.status = status;
    this.reason = reason;
    return FAILED;
  }
}

const state = new ParseState();

function failure(status: ErrorStatus, reason: string): HeadResult<never> {
  return { kind: 'error', status, reason };
}

function tooLarge(limits: ParseLimits, what: string): HeadResult<never> {
  return failure(431, `${what} head is larger than ${limits.maxHeadBytes} bytes (maxHeadBytes)`);
}

/** The bytes [a, b) quoted for an error message: JSON escapes, at most 64 characters. */
function show(buf: Buffer, a: number, b: number): string {
  return JSON.stringify(latin1(buf, a, Math.min(b, a + 64)));
}

function describeByte(c: number): string {
  if (c === CR) return 'CR';
  if (c === LF) return 'LF';
  if (c === SP) return 'SP';
  return c > SP && c < DEL ? `"${String.fromCharCode(c)}"` : `0x${c.toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------------------
// Requests

/**
 * Parses the request head that starts at `buf[start]`; bytes up to `buf.length` are the
 * data received so far. On `head`, the body (if any) starts at `start + head.headBytes`.
 * Never throws for any input.
 */
export function parseRequestHead(buf: Buffer, start: number, limits: ParseLimits = DEFAULT_PARSE_LIMITS): HeadResult<RequestHead> {
  // Only the first maxHeadBytes bytes can belong to an acceptable head: scanning stops
  // there, and reaching that point without the end of the head is a 431 at once.
  const truncated = buf.length - start > limits.maxHeadBytes;
  const end = truncated ? start + limits.maxHeadBytes : buf.length;
  let pos = start;

  for (let empty = 0; pos < end && (buf[pos] === CR || buf[pos] === LF); empty++) {
    if (buf[pos] === LF) return failure(400, 'bare LF before the request line: lines must end with CRLF');
    if (pos + 1 >= end) return truncated ? tooLarge(limits, 'request') : INCOMPLETE;
    if (buf[pos + 1] !== LF) return failure(400, 'bare CR before the request line');
    if (empty === MAX_LEADING_EMPTY_LINES) return failure(400, `more than ${MAX_LEADING_EMPTY_LINES} empty lines before the request line`);
    pos += 2;
  }

  // method SP request-target SP HTTP-version CRLF (RFC 9112 §3): single spaces, nothing else.
  let i = pos;
  while (i < end && TCHAR[buf[i] as number] !== CHAR_INVALID) i++;
  if (i >= end) return truncated ? tooLarge(limits, 'request') : INCOMPLETE;
  let c = buf[i] as number;
  if (c !== SP || i === pos) {
    if (i === pos) return failure(400, `the request line starts with ${describeByte(c)}, not a method`);
    return failure(400, `invalid character ${describeByte(c)} in the method`);
  }
  const methodEnd = i;
  const targetStart = ++i;
  for (; i < end; i++) {
    c = buf[i] as number;
    if (c <= SP || c === DEL) break;
  }
  if (i >= end) return truncated ? tooLarge(limits, 'request') : INCOMPLETE;
  if (c !== SP) {
    if (i === targetStart && (c === CR || c === LF)) return failure(400, 'empty request-target');
    if (c === CR || c === LF) return failure(400, 'the request line has no HTTP version (HTTP/0.9 is not supported)');
    return failure(400, `invalid character ${describeByte(c)} in the request-target`);
  }
  if (i === targetStart) return failure(400, 'empty request-target (two spaces after the method)');
  const targetEnd = i;
  const minor = scanVersion(buf, i + 1, end, true);
  if (minor < 0) {
    if (minor === NEED_MORE) return truncated ? tooLarge(limits, 'request') : INCOMPLETE;
    return failure(state.status, state.reason);
  }
  const method = methodName(buf, pos, methodEnd);
  const formError = checkTargetForm(buf, method, targetStart, targetEnd);
  if (formError !== undefined) return failure(400, formError);

  state.reset(true, limits.maxHeaders);
  const headEnd = scanFields(buf, start, i + 11, end, limits.maxHeaders);
  if (headEnd < 0) {
    if (headEnd === NEED_MORE) return truncated ? tooLarge(limits, 'request') : INCOMPLETE;
    return failure(state.status, state.reason);
  }
  const versionMinor = minor as 0 | 1;
  if (versionMinor === 1 && state.hostCount === 0) return failure(400, 'missing Host header (required in HTTP/1.1, RFC 9112 §3.2)');
  if (checkFraming(versionMinor) !== 0) return failure(state.status, state.reason);

  const text = latin1(buf, start, headEnd);
  const headers = buildHeaders(text);
  const head: RequestHead = {
    method: method ?? text.substring(pos - start, methodEnd - start),
    target: text.substring(targetStart - start, targetEnd - start),
    versionMinor,
    headers,
    host: state.host,
    contentLength: state.contentLength,
    chunked: state.teFields !== 0,
    keepAlive: versionMinor === 1 ? !state.connClose : state.connKeepAlive && !state.connClose,
    upgrade: state.connUpgrade && versionMinor === 1 ? state.upgrade : undefined,
    expectContinue: state.expectContinue && versionMinor === 1,
    connectionTokens: state.connectionTokens ?? [],
    headBytes: headEnd - start,
  };
  return { kind: 'head', head };
}

/**
 * The common methods as interned strings (no allocation; identity comparisons work), or
 * undefined for others, which are taken from the decoded head.
 */
function methodName(buf: Buffer, a: number, b: number): string | undefined {
  const c0 = buf[a];
  switch (b - a) {
    case 3:
      if (c0 === 0x47 && buf[a + 1] === 0x45 && buf[a + 2] === 0x54) return 'GET';
      if (c0 === 0x50 && buf[a + 1] === 0x55 && buf[a + 2] === 0x54) return 'PUT';
      return undefined;
    case 4:
      if (c0 === 0x50 && buf[a + 1] === 0x4f && buf[a + 2] === 0x53 && buf[a + 3] === 0x54) return 'POST';
      if (c0 === 0x48 && buf[a + 1] === 0x45 && buf[a + 2] === 0x41 && buf[a + 3] === 0x44) return 'HEAD';
      return undefined;
    case 5:
      return c0 === 0x50 && equalsBytes(buf, a, 'PATCH') ? 'PATCH' : undefined;
    case 6:
      return c0 === 0x44 && equalsBytes(buf, a, 'DELETE') ? 'DELETE' : undefined;
    case 7:
      if (c0 === 0x4f && equalsBytes(buf, a, 'OPTIONS')) return 'OPTIONS';
      return c0 === 0x43 && equalsBytes(buf, a, 'CONNECT') ? 'CONNECT' : undefined;
    default:
      return undefined;
  }
}

function equalsBytes(buf: Buffer, a: number, s: string): boolean {
  for (let k = 0; k < s.length; k++) if (buf[a + k] !== s.charCodeAt(k)) return false;
  return true;
}

/**
 * The request-target must have the form its method allows (RFC 9112 §3.2): authority-form
 * `host:port` only and always for CONNECT, `*` only for OPTIONS, otherwise origin-form
 * (`/...`) or absolute-form (`scheme://...`). Returns the error, or undefined.
 */
function checkTargetForm(buf: Buffer, method: string | undefined, a: number, b: number): string | undefined {
  const c0 = buf[a] as number;
  if (method === 'CONNECT') {
    let colon = -1;
    for (let i = a; i < b; i++) {
      const c = buf[i] as number;
      if (HOST_CHAR[c] === 0) return `CONNECT needs an authority-form target host:port, not ${show(buf, a, b)}`;
      if (c === COLON) colon = i;
    }
    if (colon < 0 || colon === a || colon === b - 1 || c0 === 0x2f) return `CONNECT needs an authority-form target host:port, not ${show(buf, a, b)}`;
    for (let i = colon + 1; i < b; i++) {
      const d = (buf[i] as number) - DIGIT_0;
      if (d < 0 || d > 9) return `CONNECT needs an authority-form target host:port, not ${show(buf, a, b)}`;
    }
    return undefined;
  }
  if (c0 === 0x2f) return undefined;
  if (c0 === 0x2a) {
    if (b - a === 1 && method === 'OPTIONS') return undefined;
    return `the asterisk-form target "*" is only for OPTIONS, not ${show(buf, a, b)}`;
  }
  // absolute-form: scheme "://" (scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
  let i = a;
  for (; i < b; i++) {
    const c = (buf[i] as number) | 0x20;
    const alpha = c >= 0x61 && c <= 0x7a;
    if (!(alpha || (i > a && ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e)))) break;
  }
  if (i > a && i + 3 <= b && buf[i] === COLON && buf[i + 1] === 0x2f && buf[i + 2] === 0x2f) return undefined;
  return `the request-target ${show(buf, a, b)} is neither origin-form (/path) nor absolute-form (scheme://host/path)`;
}

// ---------------------------------------------------------------------------------------
// Responses

/**
 * Parses the response head that starts at `buf[start]`, for a request with method
 * `requestMethod` (which decides whether a body follows). Call it again for the final
 * response after a 1xx. Never throws for any input.
 */
export function parseResponseHead(
  buf: Buffer,
  start: number,
  requestMethod: string,
  limits: ParseLimits = DEFAULT_PARSE_LIMITS,
): HeadResult<ResponseHead> {
  const truncated = buf.length - start > limits.maxHeadBytes;
  const end = truncated ? start + limits.maxHeadBytes : buf.length;

  // HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF (RFC 9112 §4). A missing SP before an
  // empty reason is accepted, as llhttp and Envoy do.
  const minor = scanVersion(buf, start, end, false);
  if (minor < 0) {
    if (minor === NEED_MORE) return truncated ? tooLarge(limits, 'response') : INCOMPLETE;
    return failure(state.status, state.reason);
  }
  let i = start + 9;
  let status = 0;
  for (let k = 0; k < 3; k++, i++) {
    if (i >= end) return truncated ? tooLarge(limits, 'response') : INCOMPLETE;
    const d = (buf[i] as number) - DIGIT_0;
    if (d < 0 || d > 9 || (k === 0 && d === 0)) return failure(400, `the status code is not three digits 100-999: ${show(buf, start + 9, i + 1)}`);
    status = status * 10 + d;
  }
  if (i >= end) return truncated ? tooLarge(limits, 'response') : INCOMPLETE;
  let c = buf[i] as number;
  let reasonStart = i;
  if (c === SP) {
    reasonStart = ++i;
    for (; i < end; i++) {
      c = buf[i] as number;
      if (c < SP ? c !== HTAB : c === DEL) break;
    }
    if (i >= end) return truncated ? tooLarge(limits, 'response') : INCOMPLETE;
  }
  if (c !== CR) return failure(400, `invalid character ${describeByte(c)} in the status line`);
  if (i + 1 >= end) return truncated ? tooLarge(limits, 'response') : INCOMPLETE;
  if (buf[i + 1] !== LF) return failure(400, 'bare CR in the status line');
  const reasonEnd = i;

  state.reset(false, limits.maxHeaders);
  const connect2xx = requestMethod === 'CONNECT' && status >= 200 && status < 300;
  state.ignoreFraming = connect2xx;
  const headEnd = scanFields(buf, start, i + 2, end, limits.maxHeaders);
  if (headEnd < 0) {
    if (headEnd === NEED_MORE) return truncated ? tooLarge(limits, 'response') : INCOMPLETE;
    return failure(state.status, state.reason);
  }
  const versionMinor = minor as 0 | 1;
  if (!connect2xx && checkFraming(versionMinor) !== 0) return failure(state.status, state.reason);
  const chunked = state.teFields !== 0;
  const untilClose = responseHasBody(status, requestMethod) && !chunked && state.contentLength < 0;
  const text = latin1(buf, start, headEnd);
  const headers = buildHeaders(text);
  const head: ResponseHead = {
    status,
    reason: reasonEnd === reasonStart ? '' : text.substring(reasonStart - start, reasonEnd - start),
    versionMinor,
    headers,
    contentLength: state.contentLength,
    chunked,
    keepAlive: !untilClose && (versionMinor === 1 ? !state.connClose : state.connKeepAlive && !state.connClose),
    upgrade: state.connUpgrade && versionMinor === 1 ? state.upgrade : undefined,
    connectionTokens: state.connectionTokens ?? [],
    headBytes: headEnd - start,
  };
  return { kind: 'head', head };
}

/**
 * Whether a response with `status` to a request with `requestMethod` has a body at all
 * (RFC 9112 §6.3 items 1-2): not for HEAD, 1xx, 204, 304, nor a 2xx to CONNECT (a tunnel).
 */
export function responseHasBody(status: number, requestMethod: string): boolean {
  if (status < 200 || status === 204 || status === 304 || requestMethod === 'HEAD') return false;
  return !(requestMethod === 'CONNECT' && status < 300);
}

// ---------------------------------------------------------------------------------------
// Shared pieces

const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f] as const;

/**
 * `HTTP/d.d` followed by CRLF (request line) or SP (status line), checked byte by byte
 * as far as bytes are present. Returns the minor version (0 or 1), NEED_MORE, or FAILED
 * (400 malformed, 505 a well-formed version other than 1.0 and 1.1).
 */
function scanVersion(buf: Buffer, i: number, end: number, request: boolean): number {
  // A malformed version is an error as soon as its first wrong byte is present.
  for (let k = 0; k < 8; k++) {
    if (i + k >= end) return NEED_MORE;
    const c = buf[i + k] as number;
    if (k < 5 ? c !== HTTP_SLASH[k] : !versionByteOk(c, k)) return state.fail(400, malformedVersion(buf, i, i + k, request));
  }
  const major = (buf[i + 5] as number) - DIGIT_0;
  const minor = (buf[i + 7] as number) - DIGIT_0;
  if (i + 8 >= end) return NEED_MORE;
  const next = buf[i + 8] as number;
  if (request) {
    if (next !== CR) return state.fail(400, next === LF ? 'bare LF after the request line: lines must end with CRLF' : malformedVersion(buf, i, i + 8, request));
    if (i + 9 >= end) return NEED_MORE;
    if (buf[i + 9] !== LF) return state.fail(400, 'bare CR in the request line');
  } else if (next !== SP) {
    return state.fail(400, malformedVersion(buf, i, i + 8, request));
  }
  if (major !== 1 || minor > 1) return state.fail(505, `HTTP/${major}.${minor} is not supported (only HTTP/1.0 and HTTP/1.1)`);
  return minor;
}

function versionByteOk(c: number, k: number): boolean {
  return k === 6 ? c === 0x2e : c >= DIGIT_0 && c <= DIGIT_0 + 9;
}

/**
 * The error for a version that went wrong at byte `bad`: it quotes the bytes up to that
 * one only, so that the message is the same whatever has been received after it.
 */
function malformedVersion(buf: Buffer, i: number, bad: number, request: boolean): string {
  return `malformed HTTP version ${show(buf, i, bad + 1)} in the ${request ? 'request' : 'status'} line (expected HTTP/1.1 or HTTP/1.0)`;
}

/**
 * The field lines from `pos` up to and including the empty line (RFC 9112 §5): returns
 * the position after the final CRLF, NEED_MORE or FAILED. Records each field in `state`.
 */
function scanFields(buf: Buffer, start: number, pos: number, end: number, maxHeaders: number): number {
  const fields = state.fields;
  let c = 0;
  for (;;) {
    if (pos >= end) return NEED_MORE;
    c = buf[pos] as number;
    if (c === CR) {
      if (pos + 1 >= end) return NEED_MORE;
      if (buf[pos + 1] !== LF) return state.fail(400, 'bare CR at the start of a header line');
      return pos + 2;
    }
    if (state.fieldCount === maxHeaders) return state.fail(431, `more than ${maxHeaders} header fields (maxHeaders)`);
    if (c === SP || c === HTAB) {
      // RFC 9112 §5.2: obs-fold is rejected (or replaced) by a proxy; whitespace before
      // the first field would hide it from some parsers (RFC 9112 §2.2).
      return state.fail(400, 'header line starts with whitespace (obs-fold line folding is not allowed)');
    }
    if (c === LF) return state.fail(400, 'bare LF in the header section: lines must end with CRLF');

    // field-name ":" — a token, then the colon, with nothing in between (RFC 9112 §5.1).
    const nameStart = pos;
    let i = pos;
    let cls = 0;
    for (; i < end; i++) {
      const t = TCHAR[buf[i] as number] as number;
      if (t === CHAR_INVALID) break;
      cls |= t;
    }
    if (i >= end) return NEED_MORE;
    c = buf[i] as number;
    if (c !== COLON) {
      if (c === SP || c === HTAB) return state.fail(400, `whitespace between the header name ${show(buf, nameStart, i)} and the colon`);
      if (c === CR || c === LF) return state.fail(400, `header line ${show(buf, nameStart, i)} has no colon`);
      return state.fail(400, `invalid character ${describeByte(c)} in a header name`);
    }
    if (i === nameStart) return state.fail(400, 'empty header name');
    const nameEnd = i;

    // OWS field-value OWS CRLF; the value may hold HTAB, SP, VCHAR and obs-text (RFC 9110 §5.5).
    for (i++; i < end; i++) {
      c = buf[i] as number;
      if (c !== SP && c !== HTAB) break;
    }
    const valueStart = i;
    // Four bytes per iteration while they are all valid: values are most of a head's bytes.
    const v = FIELD_VALUE_CHAR;
    while (i + 4 <= end && (v[buf[i] as number] as number) & (v[buf[i + 1] as number] as number) & (v[buf[i + 2] as number] as number) & (v[buf[i + 3] as number] as number)) i += 4;
    while (i < end && v[buf[i] as number] === 1) i++;
    if (i >= end) return NEED_MORE;
    c = buf[i] as number;
    if (c !== CR) {
      if (c === LF) return state.fail(400, 'bare LF in the header section: lines must end with CRLF');
      return state.fail(400, `control character ${describeByte(c)} in the value of header ${show(buf, nameStart, nameEnd)}`);
    }
    if (i + 1 >= end) return NEED_MORE;
    if (buf[i + 1] !== LF) return state.fail(400, `bare CR in the value of header ${show(buf, nameStart, nameEnd)}`);
    let valueEnd = i;
    while (valueEnd > valueStart && ((c = buf[valueEnd - 1] as number) === SP || c === HTAB)) valueEnd--;
    pos = i + 2;

    const known = knownHeaderName(buf, nameStart, nameEnd - nameStart);
    let flags = (cls & CHAR_UPPER) !== 0 ? FLAG_UPPER : 0;
    if (known >= 0 && known <= KNOWN_EXPECT) {
      const special = specialField(buf, known, valueStart, valueEnd);
      if (special === FAILED) return FAILED;
      flags |= special;
    }
    const o = F_SIZE * state.fieldCount++;
    fields[o + F_NAME_START] = nameStart - start;
    fields[o + F_NAME_END] = nameEnd - start;
    fields[o + F_VALUE_START] = valueStart - start;
    fields[o + F_VALUE_END] = valueEnd - start;
    fields[o + F_KNOWN] = known;
    fields[o + F_FLAGS] = flags;
  }
}

/**
 * Checks and records a field that decides framing or connection handling (`known` is its
 * KNOWN_* index). Returns FLAG_* bits for the field, or FAILED.
 */
function specialField(buf: Buffer, known: number, vs: number, ve: number): number {
  switch (known) {
    case KNOWN_HOST:
      return state.isRequest ? hostField(buf, vs, ve) : 0;
    case KNOWN_CONTENT_LENGTH:
      return state.ignoreFraming ? 0 : contentLengthField(buf, vs, ve);
    case KNOWN_TRANSFER_ENCODING:
      if (state.ignoreFraming) return 0;
      state.teFields++;
      if (ve - vs === 7 && equalsLower(buf, vs, 'chunked')) {
        state.teChunked++;
        state.teLastChunked = true;
      } else {
        transferCodings(latin1(buf, vs, ve));
      }
      return 0;
    case KNOWN_CONNECTION:
      return FLAG_CONNECTION;
    case KNOWN_UPGRADE:
      return FLAG_UPGRADE;
    default: // KNOWN_EXPECT
      if (ve - vs === 12 && equalsLower(buf, vs, '100-continue')) state.expectContinue = true;
      return 0;
  }
}

/** Exactly one Host, with a valid uri-host [ ":" port ] (RFC 9112 §3.2). */
function hostField(buf: Buffer, a: number, b: number): number {
  if (++state.hostCount > 1) return state.fail(400, 'more than one Host header (RFC 9112 §3.2)');
  for (let i = a; i < b; i++) if (HOST_CHAR[buf[i] as number] === 0) return state.fail(400, `invalid Host header ${show(buf, a, b)}`);
  return FLAG_HOST;
}

/** Content-Length = 1*DIGIT (RFC 9110 §8.6), at most 2^53-1; an identical duplicate is folded. */
function contentLengthField(buf: Buffer, a: number, b: number): number {
  if (a === b) return state.fail(400, 'empty Content-Length');
  let n = 0;
  for (let i = a; i < b; i++) {
    const d = (buf[i] as number) - DIGIT_0;
    if (d < 0 || d > 9) return state.fail(400, `Content-Length ${show(buf, a, b)} is not a decimal number of bytes`);
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) return state.fail(400, `Content-Length ${show(buf, a, b)} is larger than 2^53-1`);
  }
  if (state.contentLength === -1) {
    state.contentLength = n;
    return 0;
  }
  if (state.contentLength !== n) return state.fail(400, `Content-Length fields disagree: ${state.contentLength} and ${n}`);
  return FLAG_FOLDED;
}

/** The slow path of Transfer-Encoding: a list of codings, possibly with parameters (rare). */
function transferCodings(value: string): void {
  for (const part of value.split(',')) {
    let a = 0;
    let b = part.length;
    while (a < b && isOws(part.charCodeAt(a))) a++;
    while (b > a && isOws(part.charCodeAt(b - 1))) b--;
    const coding = part.substring(a, b).toLowerCase();
    if (coding === '') continue; // empty list elements are allowed (RFC 9110 §5.6.1)
    if (coding === 'chunked') {
      state.teChunked++;
      state.teLastChunked = true;
    } else {
      state.teOther = true;
      state.teLastChunked = false;
    }
  }
}

/**
 * The header list, from `head`: the whole head decoded once. Names and values are
 * substrings of it (V8 may keep the head string alive while any of them lives: at most
 * maxHeadBytes). Also fills Host, Connection and Upgrade in `state`.
 */
function buildHeaders(head: string): string[] {
  const fields = state.fields;
  const n = state.fieldCount;
  const headers: string[] = [];
  for (let k = 0; k < n; k++) {
    const o = F_SIZE * k;
    const flags = fields[o + F_FLAGS] as number;
    if ((flags & FLAG_FOLDED) !== 0) continue;
    const known = fields[o + F_KNOWN] as number;
    let name: string;
    if (known >= 0) {
      name = KNOWN_HEADER_NAMES[known] as string;
    } else {
      name = head.substring(fields[o + F_NAME_START] as number, fields[o + F_NAME_END] as number);
      if ((flags & FLAG_UPPER) !== 0) name = name.toLowerCase();
    }
    const vs = fields[o + F_VALUE_START] as number;
    const ve = fields[o + F_VALUE_END] as number;
    const value = vs === ve ? '' : head.substring(vs, ve);
    headers.push(name, value);
    if (flags >= FLAG_HOST) {
      if ((flags & FLAG_HOST) !== 0) state.host = value;
      else if ((flags & FLAG_CONNECTION) !== 0) connectionTokens(value);
      else if ((flags & FLAG_UPGRADE) !== 0) state.upgrade = state.upgrade === undefined ? value : `${state.upgrade}, ${value}`;
    }
  }
  return headers;
}

/** Appends the lower-cased, non-empty elements of a Connection value (RFC 9110 §7.6.1). */
function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

function connectionTokens(value: string): void {
  const tokens = state.connectionTokens ?? (state.connectionTokens = []);
  let i = 0;
  while (i <= value.length) {
    let j = value.indexOf(',', i);
    if (j < 0) j = value.length;
    let a = i;
    let b = j;
    while (a < b && isOws(value.charCodeAt(a))) a++;
    while (b > a && isOws(value.charCodeAt(b - 1))) b--;
    if (b > a) {
      const token = value.substring(a, b).toLowerCase();
      tokens.push(token);
      if (token === 'close') state.connClose = true;
      else if (token === 'keep-alive') state.connKeepAlive = true;
      else if (token === 'upgrade') state.connUpgrade = true;
    }
    i = j + 1;
  }
}

/** Whether buf[a, a + lower.length) equals `lower` (lower-case letters, digits and "-") ignoring case. */
function equalsLower(buf: Buffer, a: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) if (((buf[a + k] as number) | 0x20) !== lower.charCodeAt(k)) return false;
  return true;
}

/**
 * Checks between the framing fields of a complete head (RFC 9112 §6.1, §6.3). Returns 0,
 * or FAILED with the error in state.
 */
function checkFraming(versionMinor: 0 | 1): number {
  if (state.teFields === 0) return 0;
  // An HTTP/1.0 recipient of Transfer-Encoding must treat the framing as faulty (RFC 9112 §6.1).
  if (versionMinor === 0) return state.fail(400, 'Transfer-Encoding in an HTTP/1.0 message');
  if (!state.teLastChunked) {
    // Requests: RFC 9112 §6.3 says 400. Responses would be read until close; we reject
    // them too rather than forward a body whose coding the next hop cannot see.
    return state.fail(400, 'Transfer-Encoding does not end with the chunked coding, so the body length cannot be determined');
  }
  if (state.teChunked > 1) return state.fail(400, 'Transfer-Encoding applies chunked more than once (RFC 9112 §7)');
  // Like Envoy's codec: only chunked is implemented (RFC 9112 §6.1: 501 for an unknown coding).
  if (state.teOther) return state.fail(501, 'Transfer-Encoding codings other than chunked are not implemented');
  // Both framings present is the classic request smuggling vector (CL.TE / TE.CL,
  // RFC 9112 §6.3 item 3, §11.2). Envoy rejects it unless http_protocol_options
  // allow_chunked_length is set; so do we, always.
  if (state.contentLength !== -1) return state.fail(400, 'both Content-Length and Transfer-Encoding are present (request smuggling risk)');
  return 0;
}
