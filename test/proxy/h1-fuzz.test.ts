/**
 * Fuzzing the HTTP/1.1 parsing layer with a seeded PRNG (reproducible: a failure names
 * its seed and input). Valid requests, responses and chunked bodies are mutated (byte
 * flips; insertions of CR, LF, NUL, SP, HTAB; deletions; truncations; duplicated lines;
 * injected framing fields) or replaced by random bytes. The parsers must never throw,
 * always answer one of the three kinds, keep `headBytes` within the buffer, give the same
 * answer for any prefix (or `incomplete`), and only accept heads that satisfy the rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyFramer } from '../../src/proxy/http/h1-body.js';
import {
  DEFAULT_PARSE_LIMITS,
  parseRequestHead,
  parseResponseHead,
  type HeadResult,
  type ParseLimits,
  type RequestHead,
  type ResponseHead,
} from '../../src/proxy/http/h1-parser.js';
import { serializeRequestHead, serializeResponseHead } from '../../src/proxy/http/headers.js';

/** Fixed for reproducibility; set H1_FUZZ_SEED to explore other inputs. */
const SEED = Number(process.env['H1_FUZZ_SEED'] ?? 0x7e11);
const TIMEOUT = { timeout: 10_000 };

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[int(rand, xs.length)] as T;

const REQUESTS = [
  'GET /api/v1/items?id=42 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Request-Id: 3f9c\r\nCookie: a=1; b=2\r\nConnection: keep-alive\r\n\r\n',
  'POST /submit HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}',
  'POST /upload HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n',
  'GET http://a.example:8080/x?y HTTP/1.1\r\nHost: a.example:8080\r\nVia: 1.1 gw\r\n\r\n',
  'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  '\r\nDELETE /r/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n',
];

const RESPONSES = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n2\r\nok\r\n0\r\nx-t: 1\r\n\r\n',
  'HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n',
  'HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until close',
  'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 99\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
];

const INSERTS = ['\r', '\n', '\x00', ' ', '\t', ':', ',', '\r\n', ' \r\n', '\r\n\r\n', '\x7f', '\xff'];
const FIELDS = [
  'Content-Length: 5', 'Content-Length: 6', 'Content-Length: -1', 'Content-Length: 99999999999999999999',
  'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Transfer-Encoding: gzip, chunked', 'Host: other',
  ' Transfer-Encoding: chunked', 'Transfer-Encoding : chunked', 'Connection: close', 'Connection: upgrade',
];

/** One random mutation of `b`. */
function mutate(rand: Rand, b: Buffer): Buffer {
  const at = int(rand, b.length + 1);
  switch (int(rand, 8)) {
    case 0: {
      const c = Buffer.from(b);
      if (c.length > 0) c[Math.min(at, c.length - 1)] = int(rand, 256);
      return c;
    }
    case 1:
      return Buffer.concat([b.subarray(0, at), Buffer.from(pick(rand, INSERTS), 'latin1'), b.subarray(at)]);
    case 2:
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    case 3:
      return b.subarray(0, at);
    case 4: {
      // Duplicate a line.
      const text = b.toString('latin1');
      const lines = text.split('\r\n');
      const i = int(rand, lines.length);
      lines.splice(i, 0, lines[i] as string);
      return Buffer.from(lines.join('\r\n'), 'latin1');
    }
    case 5: {
      // Inject a framing or connection field after the start line.
      const text = b.toString('latin1');
      const eol = text.indexOf('\r\n');
      if (eol < 0) return b;
      return Buffer.from(`${text.slice(0, eol + 2)}${pick(rand, FIELDS)}\r\n${text.slice(eol + 2)}`, 'latin1');
    }
    case 6: {
      // Flip the case of a letter, or change a digit (versions, status codes, lengths, chunk sizes).
      const c = Buffer.from(b);
      const i = Math.min(at, c.length - 1);
      if (i < 0) return c;
      const x = c[i] as number;
      if ((x | 0x20) >= 0x61 && (x | 0x20) <= 0x7a) c[i] = x ^ 0x20;
      else if (x >= 0x30 && x <= 0x39) c[i] = 0x30 + int(rand, 10);
      return c;
    }
    default: {
      const junk = Buffer.alloc(int(rand, 8) + 1);
      for (let i = 0; i < junk.length; i++) junk[i] = int(rand, 256);
      return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
    }
  }
}

function randomInput(rand: Rand, seeds: readonly string[]): Buffer {
  if (rand() < 0.1) {
    const b = Buffer.alloc(int(rand, 200));
    for (let i = 0; i < b.length; i++) b[i] = rand() < 0.5 ? int(rand, 256) : pick(rand, [0x0d, 0x0a, 0x20, 0x3a, 0x48, 0x54, 0x50, 0x2f, 0x31, 0x2e]);
    return b;
  }
  let b: Buffer = Buffer.from(pick(rand, seeds), 'latin1');
  const n = 1 + int(rand, 4);
  for (let k = 0; k < n; k++) b = mutate(rand, b);
  return b;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$/;

function checkShape<H extends { headBytes: number; headers: string[] }>(r: HeadResult<H>, buf: Buffer, start: number, what: string): void {
  if (r.kind === 'incomplete') return;
  if (r.kind === 'error') {
    assert.ok([400, 431, 501, 505].includes(r.status), what);
    assert.ok(typeof r.reason === 'string' && r.reason.length > 0, what);
    return;
  }
  assert.equal(r.kind, 'head', what);
  const h = r.head;
  assert.ok(h.headBytes >= 4 && start + h.headBytes <= buf.length, `headBytes out of the buffer: ${what}`);
  assert.equal(buf.toString('latin1', start + h.headBytes - 4, start + h.headBytes), '\r\n\r\n', what);
  assert.equal(h.headers.length % 2, 0, what);
  for (let i = 0; i < h.headers.length; i += 2) {
    assert.match(h.headers[i] as string, TOKEN, what);
    assert.doesNotMatch(h.headers[i + 1] as string, BAD_VALUE, what);
  }
}

function checkRequest(r: HeadResult<RequestHead>, buf: Buffer, what: string): void {
  checkShape(r, buf, 0, what);
  if (r.kind !== 'head') return;
  const h = r.head;
  assert.ok(h.versionMinor === 0 || h.versionMinor === 1, what);
  assert.match(h.method, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, what);
  assert.ok(h.target.length > 0 && !/[\x00-\x20\x7f]/.test(h.target), what);
  assert.ok(!(h.chunked && h.contentLength >= 0), `both framings accepted: ${what}`);
  assert.ok(Number.isSafeInteger(h.contentLength) && h.contentLength >= -1, what);
  const hosts = h.headers.filter((_, i) => i % 2 === 0 && h.headers[i] === 'host').length;
  assert.ok(hosts === (h.versionMinor === 1 ? 1 : hosts) && hosts <= 1, `Host count ${hosts}: ${what}`);
  assert.ok(h.headers.filter((n, i) => i % 2 === 0 && n === 'content-length').length <= 1, what);
  if (h.versionMinor === 0) assert.equal(h.chunked, false, what);

  // What was accepted serialises to a head that parses to the same request.
  if (h.versionMinor === 1) {
    const again = parseRequestHead(serializeRequestHead(h.method, h.target, h.headers), 0);
    assert.equal(again.kind, 'head', `re-serialised head rejected: ${what}: ${JSON.stringify(again)}`);
    const g = (again as { head: RequestHead }).head;
    assert.deepEqual([g.method, g.target, g.headers, g.contentLength, g.chunked, g.host], [h.method, h.target, h.headers, h.contentLength, h.chunked, h.host], what);
  }
}

function checkResponse(r: HeadResult<ResponseHead>, buf: Buffer, method: string, what: string): void {
  checkShape(r, buf, 0, what);
  if (r.kind !== 'head') return;
  const h = r.head;
  assert.ok(h.status >= 100 && h.status <= 999, what);
  assert.ok(h.versionMinor === 0 || h.versionMinor === 1, what);
  assert.ok(!(h.chunked && h.contentLength >= 0), `both framings accepted: ${what}`);
  const again = parseResponseHead(serializeResponseHead(h.status, h.reason, h.headers), 0, method);
  if (h.versionMinor === 1) {
    assert.equal(again.kind, 'head', `re-serialised head rejected: ${what}`);
    const g = (again as { head: ResponseHead }).head;
    assert.deepEqual([g.status, g.reason, g.headers, g.contentLength, g.chunked], [h.status, h.reason, h.headers, h.contentLength, h.chunked], what);
  }
}

/** Prefixes at `cuts` answer `incomplete` or the same as the whole input. */
function checkPrefixes<H>(parse: (b: Buffer) => HeadResult<H>, buf: Buffer, whole: HeadResult<H>, cuts: Iterable<number>, what: string): void {
  for (const k of cuts) {
    const part = parse(buf.subarray(0, k));
    if (part.kind !== 'incomplete') assert.deepEqual(part, whole, `prefix ${k}: ${what}`);
  }
}

function cutsFor(rand: Rand, n: number, all: boolean): number[] {
  if (all) return Array.from({ length: n }, (_, k) => k);
  return Array.from({ length: Math.min(n, 6) }, () => int(rand, n));
}

const describeInput = (seed: number, i: number, buf: Buffer): string => `seed ${seed} input ${i}: ${JSON.stringify(buf.toString('latin1'))}`;

describe('h1 fuzz', TIMEOUT, () => {
  it('request heads: 6,000 mutated and random inputs', () => {
    const rand = prng(SEED);
    const small: ParseLimits[] = [
      { maxHeadBytes: 96, maxHeaders: 4 },
      { maxHeadBytes: 200, maxHeaders: 3 },
      { maxHeadBytes: 1024, maxHeaders: 1 },
    ];
    const kinds = { incomplete: 0, head: 0, error: 0 };
    for (let i = 0; i < 6000; i++) {
      const buf = randomInput(rand, REQUESTS);
      const limits = i % 4 === 1 ? pick(rand, small) : undefined;
      const what = describeInput(SEED, i, buf);
      const whole = parseRequestHead(buf, 0, limits);
      kinds[whole.kind]++;
      checkRequest(whole, buf, what);
      if (whole.kind === 'head') {
        const max = limits ?? DEFAULT_PARSE_LIMITS;
        assert.ok(whole.head.headBytes <= max.maxHeadBytes, `over maxHeadBytes: ${what}`);
        // Field lines: the lines of the head without leading empty lines, the request line and the final empty line.
        const fieldLines = buf.toString('latin1', 0, whole.head.headBytes).replace(/^(\r\n)+/, '').split('\r\n').length - 3;
        assert.ok(fieldLines <= max.maxHeaders, `over maxHeaders: ${what}`);
      }
      checkPrefixes((b) => parseRequestHead(b, 0, limits), buf, whole, cutsFor(rand, buf.length, i % 4 === 0), what);
      if (limits === undefined) {
        const accepted = referenceRequestAccepts(buf.toString('latin1'));
        assert.equal(whole.kind === 'head' ? whole.head.headBytes : -1, accepted, `reference reading disagrees: ${what}: ${JSON.stringify(whole)}`);
      }
      if (whole.kind === 'head') {
        // Whatever follows the head does not change it (pipelining).
        const more = Buffer.concat([buf, Buffer.from('GET / HTTP/1.1\r\n')]);
        assert.deepEqual(parseRequestHead(more, 0, limits), whole, what);
      }
    }
    // The mutations reach every kind of answer.
    assert.ok(kinds.head > 300 && kinds.error > 1000 && kinds.incomplete > 100, JSON.stringify(kinds));
  });

  it('response heads: 2,500 mutated and random inputs, for each kind of request method', () => {
    const rand = prng(SEED + 1);
    const kinds = { incomplete: 0, head: 0, error: 0 };
    for (let i = 0; i < 2500; i++) {
      const buf = randomInput(rand, RESPONSES);
      const method = pick(rand, ['GET', 'HEAD', 'POST', 'CONNECT']);
      const what = `${method} ${describeInput(SEED + 1, i, buf)}`;
      const whole = parseResponseHead(buf, 0, method);
      kinds[whole.kind]++;
      checkResponse(whole, buf, method, what);
      checkPrefixes((b) => parseResponseHead(b, 0, method), buf, whole, cutsFor(rand, buf.length, i % 4 === 0), what);
      if (whole.kind === 'head') {
        const f = BodyFramer.forResponse(whole.head, method);
        const r = f.scan(buf, whole.head.headBytes, buf.length);
        assert.ok(r.consumed >= 0 && whole.head.headBytes + r.consumed <= buf.length, what);
      }
    }
    assert.ok(kinds.head > 150 && kinds.error > 500, JSON.stringify(kinds));
  });

  it('chunked bodies: 2,000 generated and mutated bodies, scanned whole and split', () => {
    const rand = prng(SEED + 2);
    const chunkedHead = parseRequestHead(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'), 0);
    assert.equal(chunkedHead.kind, 'head');
    const head = (chunkedHead as { head: RequestHead }).head;
    let valid = 0;
    for (let i = 0; i < 2000; i++) {
      let body = chunkedBody(rand);
      const mutated = rand() < 0.6;
      if (mutated) body = mutate(rand, body);
      const what = `seed ${SEED + 2} body ${i}: ${JSON.stringify(body.toString('latin1'))}`;
      const whole = BodyFramer.forRequest(head).scan(body, 0, body.length);
      assert.ok(whole.consumed >= 0 && whole.consumed <= body.length, what);
      assert.ok(!(whole.done && whole.error !== undefined), what);
      if (!mutated) {
        assert.deepEqual(whole, { consumed: body.length, done: true, error: undefined }, what);
        valid++;
      }
      // An independent, regex-based reading of RFC 9112 §7.1 agrees on where the body ends.
      const end = referenceChunkedEnd(body.toString('latin1'));
      assert.equal(whole.done, end >= 0, `reference says ${end}: ${what}`);
      if (whole.done) assert.equal(whole.consumed, end, what);
      // Any split gives the same total, completion and error.
      const f = BodyFramer.forRequest(head);
      const cut = int(rand, body.length + 1);
      const a = f.scan(body, 0, cut);
      const b = a.done || a.error !== undefined ? a : f.scan(body, cut, body.length);
      const total = a === b ? a.consumed : a.consumed + b.consumed;
      assert.deepEqual({ consumed: total, done: b.done, error: b.error }, whole, `split at ${cut}: ${what}`);
    }
    assert.ok(valid > 500);
  });
});

/** A valid chunked body: random sizes (hex in either case), extensions and trailers. */
function chunkedBody(rand: Rand): Buffer {
  let s = '';
  const chunks = int(rand, 4);
  for (let c = 0; c < chunks; c++) {
    const size = 1 + int(rand, 40);
    let hex = size.toString(16);
    if (rand() < 0.3) hex = hex.toUpperCase();
    if (rand() < 0.2) hex = `00${hex}`;
    const ext = rand() < 0.3 ? pick(rand, [';a=b', ';x', ' ; q="1;2"', ';n=v;m']) : '';
    s += `${hex}${ext}\r\n${'d'.repeat(size)}\r\n`;
  }
  s += rand() < 0.2 ? '0;end\r\n' : '0\r\n';
  if (rand() < 0.3) s += pick(rand, ['X-T: 1\r\n', 'A: b\r\nC-D: e f\r\n', 'Empty:\r\n']);
  return Buffer.from(`${s}\r\n`, 'latin1');
}

const SIZE_LINE = /([0-9A-Fa-f]{1,16})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?\r\n/y;
const TRAILER_LINE = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n/y;

/** Where a complete chunked body in `s` ends, or -1 (malformed or incomplete): the test's reference reading. */
function referenceChunkedEnd(s: string): number {
  let i = 0;
  for (;;) {
    SIZE_LINE.lastIndex = i;
    const m = SIZE_LINE.exec(s);
    if (m === null) return -1;
    const size = parseInt(m[1] as string, 16);
    i = SIZE_LINE.lastIndex;
    if (size === 0) break;
    if (s.slice(i + size, i + size + 2) !== '\r\n') return -1;
    i += size + 2;
  }
  for (;;) {
    if (s.startsWith('\r\n', i)) return i + 2;
    TRAILER_LINE.lastIndex = i;
    if (TRAILER_LINE.exec(s) === null) return -1;
    i = TRAILER_LINE.lastIndex;
  }
}

const T = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
const VCHAR_OBS = '[\\x21-\\x7e\\x80-\\xff]';
/** RFC 9112 §2.1-§5 as one regular expression: the test's reference reading of a request head. */
const REQUEST_HEAD = new RegExp(
  `^((?:\\r\\n){0,4})(${T}+) (${VCHAR_OBS}+) HTTP/1\\.([01])\\r\\n` +
    `((?:${T}+:[ \\t]*(?:${VCHAR_OBS}(?:[\\t\\x20-\\x7e\\x80-\\xff]*${VCHAR_OBS})?)?[ \\t]*\\r\\n)*)\\r\\n`,
);
const HOST_VALUE = /^[A-Za-z0-9\-._~!$&'()*+,;=%:[\]]*$/;

/** headBytes of the request head at the start of `s` if a strict reading accepts it, else -1. */
function referenceRequestAccepts(s: string): number {
  const m = REQUEST_HEAD.exec(s);
  if (m === null) return -1;
  const [all, , method, target, minor, block] = m as unknown as [string, string, string, string, string, string];
  if (all.length > 60 * 1024) return -1;
  const fields = block === '' ? [] : block.slice(0, -2).split('\r\n').map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')] as const;
  });
  if (fields.length > 100) return -1;
  const values = (name: string): string[] => fields.filter(([n]) => n === name).map(([, v]) => v);
  // Target forms (RFC 9112 §3.2).
  if (method === 'CONNECT') {
    const colon = target.lastIndexOf(':');
    if (!HOST_VALUE.test(target) || target.startsWith('/') || colon <= 0 || !/^[0-9]+$/.test(target.slice(colon + 1))) return -1;
  } else if (target.startsWith('*')) {
    if (target !== '*' || method !== 'OPTIONS') return -1;
  } else if (!target.startsWith('/') && !/^[A-Za-z][A-Za-z0-9+\-.]*:\/\//.test(target)) {
    return -1;
  }
  // Host (RFC 9112 §3.2).
  const hosts = values('host');
  if (hosts.length > 1 || (minor === '1' && hosts.length === 0) || !hosts.every((h) => HOST_VALUE.test(h))) return -1;
  // Content-Length (RFC 9110 §8.6).
  const lengths = values('content-length');
  if (!lengths.every((v) => /^[0-9]+$/.test(v) && Number(v) <= Number.MAX_SAFE_INTEGER)) return -1;
  if (new Set(lengths.map(Number)).size > 1) return -1;
  // Transfer-Encoding (RFC 9112 §6.1, §6.3): only a single chunked, never with Content-Length or in HTTP/1.0.
  const te = values('transfer-encoding');
  if (te.length > 0) {
    const codings = te.join(',').split(',').map((c) => c.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase()).filter((c) => c !== '');
    if (minor === '0' || codings.length !== 1 || codings[0] !== 'chunked' || lengths.length > 0) return -1;
  }
  return all.length;
}
