/**
 * The HTTP/1.1 head parser: every acceptance and rejection rule, each input also checked
 * incrementally (split at every byte: a prefix answers `incomplete` or exactly the final
 * answer) and at a non-zero start offset.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_LEADING_EMPTY_LINES,
  parseRequestHead,
  parseResponseHead,
  type HeadResult,
  type ParseLimits,
  type RequestHead,
  type ResponseHead,
} from '../../src/proxy/http/h1-parser.js';
import {
  HOP_BY_HOP,
  isValidHeaderName,
  isValidHeaderValue,
  serializeRequestHead,
  serializeResponseHead,
  stripHopByHop,
} from '../../src/proxy/http/headers.js';

const TIMEOUT = { timeout: 10_000 };

/**
 * Parses `text` (Latin-1) as a request head and checks that every prefix gives
 * `incomplete` or the same answer, and that the same bytes after a junk prefix parse the
 * same from a start offset. Returns the answer for the whole input.
 */
function req(text: string, limits?: ParseLimits): HeadResult<RequestHead> {
  return checked(text, (buf, start) => parseRequestHead(buf, start, limits));
}

function res(text: string, method = 'GET', limits?: ParseLimits): HeadResult<ResponseHead> {
  return checked(text, (buf, start) => parseResponseHead(buf, start, method, limits));
}

function checked<H>(text: string, parse: (buf: Buffer, start: number) => HeadResult<H>): HeadResult<H> {
  const buf = Buffer.from(text, 'latin1');
  const whole = parse(buf, 0);
  for (let k = 0; k < buf.length; k++) {
    const part = parse(buf.subarray(0, k), 0);
    if (part.kind !== 'incomplete') assert.deepEqual(part, whole, `prefix of ${k} bytes of ${JSON.stringify(text)}`);
  }
  const offset = Buffer.concat([Buffer.from('XYZ'), buf]);
  assert.deepEqual(parse(offset, 3), whole, `at offset 3: ${JSON.stringify(text)}`);
  return whole;
}

function head(r: HeadResult<RequestHead>): RequestHead {
  assert.equal(r.kind, 'head', JSON.stringify(r));
  return (r as { head: RequestHead }).head;
}

function rhead(r: HeadResult<ResponseHead>): ResponseHead {
  assert.equal(r.kind, 'head', JSON.stringify(r));
  return (r as { head: ResponseHead }).head;
}

function rejects<H>(r: HeadResult<H>, status: number, reason: RegExp): void {
  assert.equal(r.kind, 'error', JSON.stringify(r));
  const e = r as { status: number; reason: string };
  assert.equal(e.status, status, e.reason);
  assert.match(e.reason, reason);
}

const H = 'Host: a.example\r\n';

describe('parseRequestHead: accepts', TIMEOUT, () => {
  it('a typical request, with every field of the head', () => {
    const text =
      'GET /api/v1/items?id=42 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n' +
      'X-Custom-Header:  spaced value \t\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: Keep-Alive, X-Trace\r\n\r\n';
    const h = head(req(text));
    assert.deepEqual(h, {
      method: 'GET',
      target: '/api/v1/items?id=42',
      versionMinor: 1,
      headers: [
        'host', 'reviews:9080', 'user-agent', 'curl/8.5.0', 'accept', '*/*', 'x-custom-header', 'spaced value',
        'cookie', 'a=1', 'cookie', 'b=2', 'connection', 'Keep-Alive, X-Trace',
      ],
      host: 'reviews:9080',
      contentLength: -1,
      chunked: false,
      keepAlive: true,
      upgrade: undefined,
      expectContinue: false,
      connectionTokens: ['keep-alive', 'x-trace'],
      headBytes: text.length,
    });
  });

  it('the four request-target forms, each with its method', () => {
    assert.equal(head(req(`GET /a/b?c=d#e HTTP/1.1\r\n${H}\r\n`)).target, '/a/b?c=d#e');
    assert.equal(head(req(`GET http://a.example:80/x HTTP/1.1\r\n${H}\r\n`)).target, 'http://a.example:80/x');
    assert.equal(head(req(`CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n`)).target, 'a.example:443');
    assert.equal(head(req(`CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n`)).target, '[::1]:8443');
    assert.equal(head(req(`OPTIONS * HTTP/1.1\r\n${H}\r\n`)).target, '*');
  });

  it('any token as a method, and interns the common ones', () => {
    for (const m of ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'PROPFIND', 'M-SEARCH', 'get', 'X']) {
      assert.equal(head(req(`${m} / HTTP/1.1\r\n${H}\r\n`)).method, m);
    }
  });

  it('HTTP/1.0 without Host; keep-alive only when asked for', () => {
    const h = head(req('GET / HTTP/1.0\r\n\r\n'));
    assert.equal(h.versionMinor, 0);
    assert.equal(h.host, undefined);
    assert.equal(h.keepAlive, false);
    assert.equal(head(req('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')).keepAlive, true);
    assert.equal(head(req('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n')).keepAlive, false);
  });

  it('HTTP/1.1 keep-alive unless Connection: close, in any case and list position', () => {
    assert.equal(head(req(`GET / HTTP/1.1\r\n${H}\r\n`)).keepAlive, true);
    assert.equal(head(req(`GET / HTTP/1.1\r\n${H}Connection: CLOSE\r\n\r\n`)).keepAlive, false);
    assert.equal(head(req(`GET / HTTP/1.1\r\n${H}Connection: x-a\r\nConnection: ,, te , close\r\n\r\n`)).keepAlive, false);
    assert.deepEqual(head(req(`GET / HTTP/1.1\r\n${H}Connection: x-a\r\nConnection: ,, TE , close\r\n\r\n`)).connectionTokens, ['x-a', 'te', 'close']);
  });

  it('Upgrade only when Connection lists upgrade, and only in HTTP/1.1', () => {
    const ws = 'Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    assert.equal(head(req(`GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\n${ws}\r\n`)).upgrade, 'websocket');
    assert.equal(head(req(`GET /ws HTTP/1.1\r\n${H}${ws}\r\n`)).upgrade, undefined);
    assert.equal(head(req(`GET /ws HTTP/1.0\r\nConnection: upgrade\r\n${ws}\r\n`)).upgrade, undefined);
    assert.equal(head(req(`GET / HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: a\r\nUpgrade: b/2\r\n\r\n`)).upgrade, 'a, b/2');
  });

  it('Expect: 100-continue in HTTP/1.1 only (RFC 9110 §10.1.1)', () => {
    assert.equal(head(req(`POST / HTTP/1.1\r\n${H}Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n`)).expectContinue, true);
    assert.equal(head(req(`POST / HTTP/1.1\r\n${H}Expect: 100-continuex\r\n\r\n`)).expectContinue, false);
    assert.equal(head(req('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n')).expectContinue, false);
  });

  it('values: OWS trimmed, inner whitespace, HTAB and obs-text kept, empty values allowed', () => {
    const h = head(req(`GET / HTTP/1.1\r\n${H}A:\t x \t y\t \r\nB:\r\nC:   \r\nD: caf\xe9\r\n\r\n`));
    assert.deepEqual(h.headers.slice(2), ['a', 'x \t y', 'b', '', 'c', '', 'd', 'caf\xe9']);
  });

  it('names: lower-cased, any token character, duplicates kept in order', () => {
    const h = head(req(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n!#$%&'*+-.^_\`|~09aZ: 2\r\nx-a: 3\r\nCONTENT-TYPE: text/plain\r\n\r\n`));
    assert.deepEqual(h.headers.slice(2), ['x-a', '1', "!#$%&'*+-.^_`|~09az", '2', 'x-a', '3', 'content-type', 'text/plain']);
  });

  it('Content-Length: decimal, leading zeros, up to 2^53-1; identical duplicates folded into one', () => {
    assert.equal(head(req(`POST / HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`)).contentLength, 0);
    assert.equal(head(req(`POST / HTTP/1.1\r\n${H}Content-Length: 007\r\n\r\n`)).contentLength, 7);
    assert.equal(head(req(`POST / HTTP/1.1\r\n${H}Content-Length: 9007199254740991\r\n\r\n`)).contentLength, 2 ** 53 - 1);
    const h = head(req(`POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nX: y\r\ncontent-length: 05\r\n\r\n`));
    assert.equal(h.contentLength, 5);
    assert.deepEqual(h.headers, ['host', 'a.example', 'content-length', '5', 'x', 'y']);
  });

  it('Transfer-Encoding: chunked, in any case, with OWS and empty list elements', () => {
    for (const te of ['chunked', 'Chunked', 'CHUNKED', ' chunked\t', ', chunked,']) {
      const h = head(req(`POST / HTTP/1.1\r\n${H}Transfer-Encoding:${te}\r\n\r\n`));
      assert.equal(h.chunked, true, te);
      assert.equal(h.contentLength, -1);
    }
  });

  it(`up to ${MAX_LEADING_EMPTY_LINES} empty lines before the request line (RFC 9112 §2.2), counted in headBytes`, () => {
    assert.equal(head(req(`\r\nGET / HTTP/1.1\r\n${H}\r\n`)).headBytes, 2 + 16 + H.length + 2);
    const many = '\r\n'.repeat(MAX_LEADING_EMPTY_LINES);
    assert.equal(head(req(`${many}GET / HTTP/1.1\r\n${H}\r\n`)).headBytes, many.length + 16 + H.length + 2);
    rejects(req(`${many}\r\nGET / HTTP/1.1\r\n${H}\r\n`), 400, /more than 4 empty lines/);
  });

  it('pipelined requests in one buffer: the second head starts at headBytes', () => {
    const first = `POST /a HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`;
    const second = `GET /b HTTP/1.1\r\nHost: b.example\r\n\r\n`;
    const buf = Buffer.from(first + second + 'GET /c', 'latin1');
    const a = parseRequestHead(buf, 0);
    assert.equal(a.kind, 'head');
    const n = (a as { head: RequestHead }).head.headBytes;
    assert.equal(n, first.length);
    const b = parseRequestHead(buf, n);
    assert.equal(b.kind, 'head');
    assert.equal((b as { head: RequestHead }).head.target, '/b');
    assert.equal((b as { head: RequestHead }).head.headBytes, second.length);
    assert.equal(parseRequestHead(buf, n + second.length).kind, 'incomplete');
  });

  it('a head of exactly maxHeadBytes and exactly maxHeaders fields', () => {
    const limits = { maxHeadBytes: 64, maxHeaders: 3 };
    const base = `GET / HTTP/1.1\r\n${H}A: 1\r\nB: \r\n\r\n`;
    const exact = base.replace('B: ', 'B: ' + 'x'.repeat(64 - base.length));
    assert.equal(exact.length, 64);
    assert.equal(head(req(exact, limits)).headBytes, 64);
  });
});

describe('parseRequestHead: rejects', TIMEOUT, () => {
  it('Content-Length together with Transfer-Encoding, in either order (CL.TE / TE.CL smuggling)', () => {
    rejects(req(`POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n`), 400, /both Content-Length and Transfer-Encoding/);
    rejects(req(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n`), 400, /both Content-Length and Transfer-Encoding/);
  });

  it('Content-Length fields that disagree', () => {
    rejects(req(`POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 5\r\n\r\n`), 400, /Content-Length fields disagree: 4 and 5/);
  });

  it('Content-Length that is empty, signed, not decimal, a list, or above 2^53-1', () => {
    const bad: [string, RegExp][] = [
      ['', /empty Content-Length/],
      ['   ', /empty Content-Length/],
      ['+5', /"\+5" is not a decimal number/],
      ['-1', /"-1" is not a decimal number/],
      ['0x10', /not a decimal number/],
      ['1 2', /not a decimal number/],
      ['5, 5', /not a decimal number/],
      ['1e3', /not a decimal number/],
      ['9007199254740992', /larger than 2\^53-1/],
      ['99999999999999999999999999', /larger than 2\^53-1/],
    ];
    for (const [v, reason] of bad) rejects(req(`POST / HTTP/1.1\r\n${H}Content-Length: ${v}\r\n\r\n`), 400, reason);
  });

  it('Transfer-Encoding whose final coding is not chunked (400), or with other codings (501)', () => {
    const t = (te: string): HeadResult<RequestHead> => req(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: ${te}\r\n\r\n`);
    rejects(t('gzip'), 400, /does not end with the chunked coding/);
    rejects(t('chunked, gzip'), 400, /does not end with the chunked coding/);
    rejects(t('xchunked'), 400, /does not end with the chunked coding/);
    rejects(t('chunked;q=1'), 400, /does not end with the chunked coding/);
    rejects(t(''), 400, /does not end with the chunked coding/);
    rejects(req(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n`), 400, /does not end with the chunked/);
    rejects(t('chunked, chunked'), 400, /chunked more than once/);
    rejects(t('gzip, chunked'), 501, /other than chunked are not implemented/);
    rejects(req(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n`), 501, /not implemented/);
  });

  it('Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)', () => {
    rejects(req('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'), 400, /HTTP\/1.0/);
  });

  it('obs-fold, and whitespace before the first field', () => {
    rejects(req(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n  continued\r\n\r\n`), 400, /obs-fold/);
    rejects(req(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n\tcontinued\r\n\r\n`), 400, /obs-fold/);
    rejects(req(`GET / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n${H}\r\n`), 400, /obs-fold/);
  });

  it('whitespace between a header name and the colon', () => {
    rejects(req(`GET / HTTP/1.1\r\nHost : a\r\n\r\n`), 400, /whitespace between the header name "Host" and the colon/);
    rejects(req(`GET / HTTP/1.1\r\n${H}Transfer-Encoding\t: chunked\r\n\r\n`), 400, /whitespace between/);
  });

  it('bare LF anywhere: lines must end with CRLF', () => {
    rejects(req('GET / HTTP/1.1\nHost: a\r\n\r\n'), 400, /bare LF/);
    rejects(req('GET / HTTP/1.1\r\nHost: a\n\r\n'), 400, /bare LF/);
    rejects(req('GET / HTTP/1.1\r\nHost: a\r\n\n'), 400, /bare LF/);
    rejects(req('GET / HTTP/1.1\nHost: a\n\n'), 400, /bare LF/);
    rejects(req('\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'), 400, /bare LF/);
    rejects(req('GET /\n HTTP/1.1\r\nHost: a\r\n\r\n'), 400, /no HTTP version/);
  });

  it('bare CR anywhere', () => {
    rejects(req(`GET / HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`), 400, /bare CR in the value of header "X"/);
    rejects(req(`GET / HTTP/1.1\r${H}\r\n`), 400, /bare CR in the request line/);
    rejects(req(`GET / HTTP/1.1\r\n${H}\rX\r\n`), 400, /bare CR at the start of a header line/);
    rejects(req(`\rGET / HTTP/1.1\r\n${H}\r\n`), 400, /bare CR before the request line/);
  });

  it('invalid token characters in the method', () => {
    rejects(req(`GE(T / HTTP/1.1\r\n${H}\r\n`), 400, /invalid character "\(" in the method/);
    rejects(req(`G\x00T / HTTP/1.1\r\n${H}\r\n`), 400, /invalid character 0x00 in the method/);
    rejects(req(`GET\t/ HTTP/1.1\r\n${H}\r\n`), 400, /invalid character 0x09 in the method/);
    rejects(req(` GET / HTTP/1.1\r\n${H}\r\n`), 400, /starts with SP, not a method/);
  });

  it('invalid characters in header names, and empty names', () => {
    rejects(req(`GET / HTTP/1.1\r\n${H}X(Y): z\r\n\r\n`), 400, /invalid character "\(" in a header name/);
    rejects(req(`GET / HTTP/1.1\r\n${H}H\xe9ader: z\r\n\r\n`), 400, /invalid character 0xe9 in a header name/);
    rejects(req(`GET / HTTP/1.1\r\n${H}X\x00: z\r\n\r\n`), 400, /invalid character 0x00 in a header name/);
    rejects(req(`GET / HTTP/1.1\r\n${H}: z\r\n\r\n`), 400, /empty header name/);
    rejects(req(`GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`), 400, /header line "NoColon" has no colon/);
  });

  it('control characters other than HTAB in header values', () => {
    for (const c of ['\x00', '\x01', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f']) {
      rejects(req(`GET / HTTP/1.1\r\n${H}X-V: a${c}b\r\n\r\n`), 400, /control character .* in the value of header "X-V"/);
    }
  });

  it('a missing Host in HTTP/1.1, and more than one Host in any version', () => {
    rejects(req('GET / HTTP/1.1\r\nX: y\r\n\r\n'), 400, /missing Host header/);
    rejects(req('GET http://a/ HTTP/1.1\r\n\r\n'), 400, /missing Host header/);
    rejects(req(`GET / HTTP/1.1\r\n${H}host: b.example\r\n\r\n`), 400, /more than one Host header/);
    rejects(req(`GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n`), 400, /more than one Host header/);
  });

  it('an invalid Host value', () => {
    for (const v of ['a b', 'user@a', 'a/b', 'a\\b', 'a"b', 'caf\xe9']) rejects(req(`GET / HTTP/1.1\r\nHost: ${v}\r\n\r\n`), 400, /invalid Host header/);
  });

  it('an empty request-target, or one with spaces or control characters', () => {
    rejects(req(`GET  HTTP/1.1\r\n${H}\r\n`), 400, /empty request-target/);
    rejects(req(`GET  / HTTP/1.1\r\n${H}\r\n`), 400, /empty request-target/);
    rejects(req(`GET\r\n${H}\r\n`), 400, /invalid character CR in the method/);
    rejects(req(`GET \r\n${H}\r\n`), 400, /empty request-target/);
    rejects(req(`GET /a b HTTP/1.1\r\n${H}\r\n`), 400, /malformed HTTP version "b"/);
    rejects(req(`GET /a\x01b HTTP/1.1\r\n${H}\r\n`), 400, /invalid character 0x01 in the request-target/);
    rejects(req(`GET /a\x7fb HTTP/1.1\r\n${H}\r\n`), 400, /invalid character 0x7f in the request-target/);
    rejects(req(`GET /a\tb HTTP/1.1\r\n${H}\r\n`), 400, /invalid character 0x09 in the request-target/);
    rejects(req(`GET / \r\n${H}\r\n`), 400, /malformed HTTP version/);
  });

  it('a request-target of the wrong form for its method', () => {
    rejects(req(`CONNECT /path HTTP/1.1\r\n${H}\r\n`), 400, /CONNECT needs an authority-form target/);
    rejects(req(`CONNECT a.example HTTP/1.1\r\n${H}\r\n`), 400, /CONNECT needs an authority-form/);
    rejects(req(`CONNECT a.example:https HTTP/1.1\r\n${H}\r\n`), 400, /CONNECT needs an authority-form/);
    rejects(req(`CONNECT http://a:1/ HTTP/1.1\r\n${H}\r\n`), 400, /CONNECT needs an authority-form/);
    rejects(req(`GET * HTTP/1.1\r\n${H}\r\n`), 400, /only for OPTIONS/);
    rejects(req(`OPTIONS *x HTTP/1.1\r\n${H}\r\n`), 400, /only for OPTIONS/);
    rejects(req(`GET a.example:443 HTTP/1.1\r\n${H}\r\n`), 400, /neither origin-form/);
    rejects(req(`GET index.html HTTP/1.1\r\n${H}\r\n`), 400, /neither origin-form/);
  });

  it('HTTP versions other than 1.0 and 1.1 (505), and malformed versions (400)', () => {
    for (const v of ['HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/3.0', 'HTTP/9.9']) {
      rejects(req(`GET / ${v}\r\n${H}\r\n`), 505, new RegExp(`${v.replace('.', '\\.')} is not supported`));
    }
    rejects(req('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 505, /HTTP\/2.0 is not supported/);
    for (const v of ['http/1.1', 'HTTP/1.1x', 'HTTP/11', 'HTTP/1', 'HTTP/1.', 'HTTP 1.1', 'HTTP/1.1 ', 'HTTP/a.1', 'XTTP/1.1']) {
      rejects(req(`GET / ${v}\r\n${H}\r\n`), 400, /malformed HTTP version/);
    }
    rejects(req(`GET /\r\n${H}\r\n`), 400, /no HTTP version/);
  });

  it(`431 once more than maxHeadBytes are buffered without the end of the head`, () => {
    const limits = { maxHeadBytes: 64, maxHeaders: 100 };
    const base = `GET / HTTP/1.1\r\n${H}A: 1\r\nB: \r\n\r\n`;
    const over = base.replace('B: ', 'B: ' + 'x'.repeat(65 - base.length));
    rejects(req(over, limits), 431, /larger than 64 bytes/);
    // Decided as soon as 65 bytes without CRLFCRLF are buffered, whatever follows.
    rejects(parseRequestHead(Buffer.from('GET /' + 'a'.repeat(60)), 0, limits), 431, /larger than 64 bytes/);
    assert.equal(parseRequestHead(Buffer.from('GET /' + 'a'.repeat(59)), 0, limits).kind, 'incomplete');
    rejects(parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\n${H}X: ${'v'.repeat(100)}`), 0, limits), 431, /maxHeadBytes/);
    rejects(parseRequestHead(Buffer.from('\r\n'.repeat(40)), 0, limits), 400, /empty lines/);
  });

  it('431 when there are more than maxHeaders fields', () => {
    const limits = { maxHeadBytes: 60 * 1024, maxHeaders: 3 };
    assert.equal(req(`GET / HTTP/1.1\r\n${H}A: 1\r\nA: 2\r\n\r\n`, limits).kind, 'head');
    rejects(req(`GET / HTTP/1.1\r\n${H}A: 1\r\nA: 2\r\nA: 3\r\n\r\n`, limits), 431, /more than 3 header fields/);
    const many = 'X: y\r\n'.repeat(101);
    rejects(req(`GET / HTTP/1.1\r\n${H}${many}\r\n`), 431, /more than 100 header fields/);
  });

  it('classic smuggling obfuscations of Transfer-Encoding all fail or frame unambiguously', () => {
    const variants = [
      'Transfer-Encoding: xchunked',
      'Transfer-Encoding : chunked',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: x',
      'Transfer-Encoding:\x0bchunked',
      'Transfer-Encoding: chunked\r\nContent-Length: 3',
      'Transfer-encoding: cHuNkEd\r\nContent-Length: 3',
      'X: x\n Transfer-Encoding: chunked',
      'X: x\r\n Transfer-Encoding: chunked',
      'Transfer-Encoding\n: chunked',
      'Transfer-Encoding: "chunked"',
      'Transfer_Encoding: chunked\r\nContent-Length: 3',
      'Content-Length: 3\r\nContent-Length : 4',
      'Content-Length: 3\r\nContent-Length: 3 4',
    ];
    for (const v of variants) {
      const r = req(`POST / HTTP/1.1\r\n${H}${v}\r\n\r\n`);
      if (r.kind === 'head') {
        // Accepted only where the framing has one reading.
        assert.ok(!(r.head.chunked && r.head.contentLength >= 0), v);
        assert.equal(v, 'Transfer_Encoding: chunked\r\nContent-Length: 3');
        assert.equal(r.head.contentLength, 3);
      } else {
        assert.equal(r.kind, 'error', v);
      }
    }
  });
});

describe('parseResponseHead', TIMEOUT, () => {
  it('a typical response, with every field of the head', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: x-hop\r\n\r\n';
    assert.deepEqual(rhead(res(text)), {
      status: 200,
      reason: 'OK',
      versionMinor: 1,
      headers: ['content-type', 'text/plain', 'content-length', '2', 'connection', 'x-hop'],
      contentLength: 2,
      chunked: false,
      keepAlive: true,
      upgrade: undefined,
      connectionTokens: ['x-hop'],
      headBytes: text.length,
    });
  });

  it('reason phrases: with spaces, obs-text, empty, or missing with its space', () => {
    assert.equal(rhead(res('HTTP/1.1 404 Not  Found \xe9\r\nContent-Length: 0\r\n\r\n')).reason, 'Not  Found \xe9');
    assert.equal(rhead(res('HTTP/1.1 204 \r\n\r\n')).reason, '');
    assert.equal(rhead(res('HTTP/1.1 204\r\n\r\n')).reason, '');
    assert.equal(rhead(res('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')).versionMinor, 0);
  });

  it('keep-alive: not when the body is delimited by close, nor in HTTP/1.0 without keep-alive', () => {
    assert.equal(rhead(res('HTTP/1.1 200 OK\r\n\r\n')).keepAlive, false);
    assert.equal(rhead(res('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).keepAlive, true);
    assert.equal(rhead(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')).keepAlive, true);
    assert.equal(rhead(res('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')).keepAlive, false);
    assert.equal(rhead(res('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')).keepAlive, false);
    assert.equal(rhead(res('HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n')).keepAlive, true);
    // Bodyless responses need no length to keep the connection.
    assert.equal(rhead(res('HTTP/1.1 204 No Content\r\n\r\n')).keepAlive, true);
    assert.equal(rhead(res('HTTP/1.1 304 Not Modified\r\n\r\n')).keepAlive, true);
    assert.equal(rhead(res('HTTP/1.1 100 Continue\r\n\r\n')).keepAlive, true);
    assert.equal(rhead(res('HTTP/1.1 200 OK\r\n\r\n', 'HEAD')).keepAlive, true);
  });

  it('a 101 with Connection: upgrade reports the protocol', () => {
    const h = rhead(res('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
    assert.equal(h.status, 101);
    assert.equal(h.upgrade, 'websocket');
  });

  it('a 2xx to CONNECT ignores Content-Length and Transfer-Encoding (RFC 9110 §9.3.6)', () => {
    const h = rhead(res('HTTP/1.1 200 Connection Established\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'CONNECT'));
    assert.equal(h.contentLength, -1);
    assert.equal(h.chunked, false);
    assert.equal(h.keepAlive, true);
    rejects(res('HTTP/1.1 407 Auth\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'CONNECT'), 400, /both Content-Length/);
  });

  it('rejects ambiguous framing as for requests', () => {
    rejects(res('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'), 400, /both Content-Length and Transfer-Encoding/);
    rejects(res('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'), 400, /disagree/);
    rejects(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'), 400, /does not end with the chunked/);
    rejects(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), 501, /not implemented/);
    rejects(res('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), 400, /HTTP\/1.0/);
    rejects(res('HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n'), 400, /obs-fold/);
    rejects(res('HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'), 400, /bare LF|invalid character LF/);
  });

  it('rejects malformed status lines and unsupported versions', () => {
    rejects(res('HTTP/1.1 20 OK\r\n\r\n'), 400, /not three digits/);
    rejects(res('HTTP/1.1 099 X\r\n\r\n'), 400, /not three digits/);
    rejects(res('HTTP/1.1 2000 OK\r\n\r\n'), 400, /invalid character "0" in the status line/);
    rejects(res('HTTP/1.1 200 O\x00K\r\n\r\n'), 400, /invalid character 0x00 in the status line/);
    rejects(res('HTTP/1.1 200 OK\rX\r\n\r\n'), 400, /bare CR in the status line/);
    rejects(res('HTTP/1.1  200 OK\r\n\r\n'), 400, /not three digits/);
    rejects(res('HTTP/2.0 200 OK\r\n\r\n'), 505, /HTTP\/2.0 is not supported/);
    rejects(res('HTTP/1.1\r\n\r\n'), 400, /malformed HTTP version/);
    rejects(res('\r\nHTTP/1.1 200 OK\r\n\r\n'), 400, /malformed HTTP version/);
    rejects(res('ICY 200 OK\r\n\r\n'), 400, /malformed HTTP version/);
  });

  it('431 past maxHeadBytes or maxHeaders', () => {
    rejects(res('HTTP/1.1 200 OK\r\nX: ' + 'y'.repeat(80) + '\r\n\r\n', 'GET', { maxHeadBytes: 64, maxHeaders: 100 }), 431, /response head is larger than 64 bytes/);
    rejects(res('HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n', 'GET', { maxHeadBytes: 1024, maxHeaders: 1 }), 431, /more than 1 header fields/);
  });

  it('Host is an ordinary field in a response', () => {
    assert.deepEqual(rhead(res('HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nContent-Length: 0\r\n\r\n')).headers, ['host', 'a b', 'host', 'c', 'content-length', '0']);
  });
});

describe('headers: hop-by-hop stripping and serialisation', TIMEOUT, () => {
  it('strips the fixed hop-by-hop set and the names listed in Connection (RFC 9110 §7.6.1)', () => {
    const h = head(
      req(
        'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop, Upgrade\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nTE: trailers\r\n' +
          'Upgrade: h2c\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nTrailer: x\r\nAccept: */*\r\nX-Keep: 2\r\n\r\n',
      ),
    );
    const before = [...h.headers];
    assert.deepEqual(stripHopByHop(h.headers, h.connectionTokens), ['host', 'a', 'accept', '*/*', 'x-keep', '2']);
    assert.deepEqual(h.headers, before, 'the input list is not modified');
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']) {
      assert.ok(HOP_BY_HOP.has(name), name);
      assert.deepEqual(stripHopByHop([name, 'x', 'a', 'b'], []), ['a', 'b'], name);
    }
  });

  it('returns the same array when nothing is hop-by-hop', () => {
    const headers = ['host', 'a', 'accept', '*/*'];
    assert.equal(stripHopByHop(headers, []), headers);
    assert.equal(stripHopByHop(headers, ['x-other']), headers);
  });

  it('never lets Connection remove Content-Length or Host (the body would be forwarded without its framing)', () => {
    const h = head(req('POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host, x-a\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n'));
    assert.deepEqual(stripHopByHop(h.headers, h.connectionTokens), ['host', 'a', 'content-length', '3']);
  });

  it('serialises a head into one buffer that parses back to the same head', () => {
    const headers = ['host', 'a.example', 'content-length', '5', 'x-v', 'caf\xe9'];
    const buf = serializeRequestHead('PUT', '/x?y=1', headers);
    assert.equal(buf.toString('latin1'), 'PUT /x?y=1 HTTP/1.1\r\nhost: a.example\r\ncontent-length: 5\r\nx-v: caf\xe9\r\n\r\n');
    const h = head(req(buf.toString('latin1')));
    assert.deepEqual([h.method, h.target, h.headers, h.headBytes], ['PUT', '/x?y=1', headers, buf.length]);
    const res = serializeResponseHead(404, 'Not Found', ['content-length', '0']);
    assert.equal(res.toString('latin1'), 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    assert.equal(serializeResponseHead(204, '', []).toString('latin1'), 'HTTP/1.1 204 \r\n\r\n');
  });

  it('validates names and values that configuration adds, before they are serialised', () => {
    assert.equal(isValidHeaderName('x-trellis-route'), true);
    for (const bad of ['', 'a b', 'a:b', 'caf\xe9', 'x\r\ny', 'a\u0100']) assert.equal(isValidHeaderName(bad), false, bad);
    assert.equal(isValidHeaderValue('a \t b; q=1, caf\xe9'), true);
    assert.equal(isValidHeaderValue(''), true);
    for (const bad of ['a\r\nX-Injected: 1', 'a\nb', 'a\x00', ' a', 'a\t', 'a\x7f', '\u0100']) assert.equal(isValidHeaderValue(bad), false, JSON.stringify(bad));
  });
});
