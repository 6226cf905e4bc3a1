/**
 * Body framing for HTTP/1.1 messages (RFC 9112 §6.3, §7.1): decides where a message body
 * ends so that its bytes are passed through unchanged, never decoded and re-encoded. A
 * Content-Length body is a countdown; a chunked body is scanned chunk header by chunk
 * header, and the chunk data in between is skipped in one step, not byte by byte.
 *
 * One framer per message, or one per connection re-armed with `setForRequest` /
 * `setForResponse` for each message (no allocation per message).
 */
import { TCHAR, CHAR_INVALID } from './headers.js';
import { responseHasBody, type RequestHead, type ResponseHead } from './h1-parser.js';

/** How the body of a message is delimited. */
export const BODY_KINDS = { none: 'none', length: 'length', chunked: 'chunked', close: 'close' } as const;
export type BodyKind = (typeof BODY_KINDS)[keyof typeof BODY_KINDS];

/**
 * Bytes of chunk extensions allowed on one chunk-size line. Extensions are ignored, but
 * an unbounded one lets a client make the proxy scan forever without a byte of data
 * (Node fixed the same hole, CVE-2024-22019, with a 16 KiB limit).
 */
export const MAX_CHUNK_EXTENSION_BYTES = 16 * 1024;
/** Hex digits of a chunk size: 16 fit 64 bits; sizes above 2^53-1 are rejected too. */
export const MAX_CHUNK_SIZE_DIGITS = 16;
/** Bytes of the trailer section (after the last chunk), like the head's maxHeadBytes. */
export const MAX_TRAILER_BYTES = 60 * 1024;

/** The result of one `scan` call. */
export interface ScanResult {
  /** Bytes from `start` that belong to this body, to pass on unchanged. */
  readonly consumed: number;
  /** The body ended within the consumed bytes; the next message starts after them. */
  readonly done: boolean;
  /** The body is malformed: close the connection (the bytes after `consumed` are not forwarded). */
  readonly error: string | undefined;
}

const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const DEL = 0x7f;

// Chunked-body states (RFC 9112 §7.1):
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
const SIZE_START = 0; // the first hex digit of a chunk size
const SIZE = 1; // more hex digits, BWS, ";" or CR
const SIZE_BWS = 2; // whitespace after the size: only ";" may follow
const EXTENSION = 3; // chunk extensions, up to CR
const SIZE_LF = 4; // the LF ending the chunk-size line
const DATA = 5; // chunk data: `remaining` bytes
const DATA_CR = 6; // the CRLF after chunk data
const DATA_LF = 7;
const TRAILER_START = 8; // a trailer field line, or the final CRLF
const TRAILER_NAME = 9;
const TRAILER_VALUE = 10;
const TRAILER_LF = 11;
const END_LF = 12; // the LF of the final CRLF
const DONE = 13;
const FAILED = 14; // an error was reported; nothing more is consumed

/** Scans a message body. Create with `forRequest`/`forResponse`, call `scan` with each batch of bytes. */
export class BodyFramer {
  private mode: BodyKind = 'none';
  /** Length mode: body bytes left. Chunked mode: data bytes left in the current chunk, or the size being read. */
  private remaining = 0;
  private state = DONE;
  /** Bytes counted against a limit in the current state (size digits, extension, trailer). */
  private count = 0;
  private trailerBytes = 0;
  private error: string | undefined = undefined;

  /** The framing of a request body: chunked, Content-Length, or none (RFC 9112 §6.3 items 4-6). */
  static forRequest(head: RequestHead): BodyFramer {
    const f = new BodyFramer();
    f.setForRequest(head);
    return f;
  }

  /**
   * The framing of a response body to a request with `requestMethod`: none for HEAD,
   * 1xx, 204, 304 and a 2xx to CONNECT (RFC 9112 §6.3 items 1-2), then chunked, then
   * Content-Length, otherwise until the connection closes.
   */
  static forResponse(head: ResponseHead, requestMethod: string): BodyFramer {
    const f = new BodyFramer();
    f.setForResponse(head, requestMethod);
    return f;
  }

  /** Re-arms this framer for the body of `head` (see forRequest). */
  setForRequest(head: RequestHead): void {
    if (head.chunked) this.arm('chunked', 0);
    else if (head.contentLength > 0) this.arm('length', head.contentLength);
    else this.arm('none', 0);
  }

  /** Re-arms this framer for the body of `head` (see forResponse). */
  setForResponse(head: ResponseHead, requestMethod: string): void {
    if (!responseHasBody(head.status, requestMethod)) this.arm('none', 0);
    else if (head.chunked) this.arm('chunked', 0);
    else if (head.contentLength > 0) this.arm('length', head.contentLength);
    else if (head.contentLength === 0) this.arm('none', 0);
    else this.arm('close', 0);
  }

  private arm(mode: BodyKind, length: number): void {
    this.mode = mode;
    this.remaining = length;
    this.state = mode === 'chunked' ? SIZE_START : mode === 'none' ? DONE : DATA;
    this.count = 0;
    this.trailerBytes = 0;
    this.error = undefined;
  }

  /** How the body is delimited. */
  get kind(): BodyKind {
    return this.mode;
  }

  /** The body ends when the peer closes the connection (a response without length): that connection cannot be reused. */
  get untilClose(): boolean {
    return this.mode === 'close';
  }

  /** The whole body has been scanned (immediately true for `none`). Never true for `close`. */
  get done(): boolean {
    return this.state === DONE;
  }

  /** Content-Length bodies: bytes still expected. */
  get remainingLength(): number {
    return this.mode === 'length' ? this.remaining : 0;
  }

  /**
   * Scans `buf[start, end)`, the next bytes received after what earlier calls consumed.
   * Returns how many of them belong to the body; pass those on unchanged. When `done`,
   * the rest (`start + consumed` on) is the next message. After an error or `done`,
   * further calls consume nothing.
   */
  scan(buf: Buffer, start: number, end: number): ScanResult {
    switch (this.mode) {
      case 'length': {
        if (this.state === DONE) return result(0, true, undefined);
        const n = Math.min(this.remaining, end - start);
        this.remaining -= n;
        if (this.remaining === 0) this.state = DONE;
        return result(n, this.remaining === 0, undefined);
      }
      case 'chunked':
        return this.scanChunked(buf, start, end);
      case 'close':
        return result(end - start, false, undefined);
      default:
        return result(0, true, undefined);
    }
  }

  private scanChunked(buf: Buffer, start: number, end: number): ScanResult {
    let i = start;
    let state = this.state;
    if (state === FAILED) return result(0, false, this.error);
    while (i < end) {
      if (state === DATA) {
        const n = Math.min(this.remaining, end - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) state = DATA_CR;
        continue;
      }
      if (state === DONE) break;
      const c = buf[i] as number;
      switch (state) {
        case SIZE_START: {
          const d = hexValue(c);
          if (d < 0) return this.fail(i - start, `chunk size does not start with a hex digit (${describe(c)})`);
          this.remaining = d;
          this.count = 1;
          state = SIZE;
          break;
        }
        case SIZE: {
          const d = hexValue(c);
          if (d >= 0) {
            if (++this.count > MAX_CHUNK_SIZE_DIGITS) return this.fail(i - start, `chunk size has more than ${MAX_CHUNK_SIZE_DIGITS} hex digits`);
            this.remaining = this.remaining * 16 + d;
            if (this.remaining > Number.MAX_SAFE_INTEGER) return this.fail(i - start, 'chunk size is larger than 2^53-1');
          } else if (c === CR) {
            state = SIZE_LF;
          } else if (c === 0x3b) {
            state = EXTENSION;
            this.count = 0;
          } else if (c === SP || c === HTAB) {
            state = SIZE_BWS;
          } else {
            return this.fail(i - start, `invalid character ${describe(c)} in a chunk size`);
          }
          break;
        }
        case SIZE_BWS:
          if (c === 0x3b) {
            state = EXTENSION;
            this.count = 0;
          } else if (c !== SP && c !== HTAB) {
            return this.fail(i - start, `invalid character ${describe(c)} after a chunk size (only ";" extensions may follow)`);
          }
          break;
        case EXTENSION:
          // Extensions are ignored; only their bytes are checked, and bounded.
          if (c === CR) state = SIZE_LF;
          else if (c < SP ? c !== HTAB : c === DEL) return this.fail(i - start, `control character ${describe(c)} in a chunk extension`);
          else if (++this.count > MAX_CHUNK_EXTENSION_BYTES) return this.fail(i - start, `chunk extension longer than ${MAX_CHUNK_EXTENSION_BYTES} bytes`);
          break;
        case SIZE_LF:
          if (c !== LF) return this.fail(i - start, 'chunk-size line not ended by CRLF');
          if (this.remaining === 0) {
            state = TRAILER_START;
            this.trailerBytes = 0;
          } else {
            state = DATA;
          }
          break;
        case DATA_CR:
          if (c !== CR) return this.fail(i - start, 'chunk data not followed by CRLF (the chunk size does not match the data)');
          state = DATA_LF;
          break;
        case DATA_LF:
          if (c !== LF) return this.fail(i - start, 'chunk data not followed by CRLF (the chunk size does not match the data)');
          state = SIZE_START;
          break;
        default: {
          // Trailer section (RFC 9112 §7.1.2): field lines as in a head, passed through.
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail(i - start, `trailer section larger than ${MAX_TRAILER_BYTES} bytes`);
          const err = this.trailerByte(c, state);
          if (typeof err === 'string') return this.fail(i - start, err);
          state = err;
        }
      }
      i++;
    }
    this.state = state;
    return result(i - start, state === DONE, undefined);
  }

  /** The next state after byte `c` of the trailer section, or an error. */
  private trailerByte(c: number, state: number): number | string {
    switch (state) {
      case TRAILER_START:
        if (c === CR) return END_LF;
        if (c === SP || c === HTAB) return 'trailer line starts with whitespace (obs-fold is not allowed)';
        if (TCHAR[c] === CHAR_INVALID) return `invalid character ${describe(c)} in a trailer field name`;
        return TRAILER_NAME;
      case TRAILER_NAME:
        if (c === 0x3a) return TRAILER_VALUE;
        if (TCHAR[c] === CHAR_INVALID) return `invalid character ${describe(c)} in a trailer field name`;
        return TRAILER_NAME;
      case TRAILER_VALUE:
        if (c === CR) return TRAILER_LF;
        if (c < SP ? c !== HTAB : c === DEL) return `control character ${describe(c)} in a trailer field value`;
        return TRAILER_VALUE;
      case TRAILER_LF:
        if (c !== LF) return 'bare CR in the trailer section';
        return TRAILER_START;
      default: // END_LF
        if (c !== LF) return 'bare CR at the end of the chunked body';
        return DONE;
    }
  }

  private fail(consumed: number, error: string): ScanResult {
    this.state = FAILED;
    this.error = error;
    return result(consumed, false, error);
  }
}

function result(consumed: number, done: boolean, error: string | undefined): ScanResult {
  return { consumed, done, error };
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

function describe(c: number): string {
  if (c === CR) return 'CR';
  if (c === LF) return 'LF';
  if (c === SP) return 'SP';
  return c > SP && c < DEL ? `"${String.fromCharCode(c)}"` : `0x${c.toString(16).padStart(2, '0')}`;
}
