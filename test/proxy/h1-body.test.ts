/**
 * Body framing: which responses have a body (HEAD, 1xx, 204, 304, CONNECT), Content-Length
 * countdowns, and chunked bodies with extensions and trailers split across reads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyFramer, MAX_CHUNK_EXTENSION_BYTES, type ScanResult } from '../../src/proxy/http/h1-body.js';
import { parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from '../../src/proxy/http/h1-parser.js';

const TIMEOUT = { timeout: 10_000 };

function requestHead(fields: string): RequestHead {
  const r = parseRequestHead(Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\n${fields}\r\n`), 0);
  assert.equal(r.kind, 'head', JSON.stringify(r));
  return (r as { head: RequestHead }).head;
}

function responseHead(statusLineAndFields: string, method = 'GET'): ResponseHead {
  const r = parseResponseHead(Buffer.from(`HTTP/1.1 ${statusLineAndFields}\r\n`), 0, method);
  assert.equal(r.kind, 'head', JSON.stringify(r));
  return (r as { head: ResponseHead }).head;
}

const CHUNKED = requestHead('Transfer-Encoding: chunked\r\n');

/** Feeds `body` to a fresh chunked framer in the given pieces; returns the totals. */
function feed(body: Buffer, cuts: readonly number[]): { consumed: number; done: boolean; error: string | undefined } {
  const f = BodyFramer.forRequest(CHUNKED);
  let consumed = 0;
  let last: ScanResult = { consumed: 0, done: false, error: undefined };
  const bounds = [...cuts, body.length];
  let from = 0;
  for (const to of bounds) {
    last = f.scan(body, from, to);
    consumed += last.consumed;
    assert.ok(last.consumed >= 0 && last.consumed <= to - from);
    if (last.done || last.error !== undefined) break;
    assert.equal(last.consumed, to - from, 'a body not yet done consumes every byte given');
    from = to;
  }
  return { consumed, done: last.done, error: last.error };
}

/** The whole chunked `body` at once, then split at every byte position, then byte by byte: all agree. */
function chunked(text: string): { consumed: number; done: boolean; error: string | undefined } {
  const body = Buffer.from(text, 'latin1');
  const whole = feed(body, []);
  for (let k = 0; k <= body.length; k++) assert.deepEqual(feed(body, [k]), whole, `split at ${k}: ${JSON.stringify(text)}`);
  assert.deepEqual(feed(body, Array.from({ length: body.length }, (_, k) => k)), whole, `byte by byte: ${JSON.stringify(text)}`);
  return whole;
}

describe('BodyFramer: which messages have a body', TIMEOUT, () => {
  it('requests: chunked, Content-Length, or none', () => {
    assert.equal(BodyFramer.forRequest(CHUNKED).kind, 'chunked');
    const cl = BodyFramer.forRequest(requestHead('Content-Length: 5\r\n'));
    assert.equal(cl.kind, 'length');
    assert.equal(cl.remainingLength, 5);
    for (const h of [requestHead(''), requestHead('Content-Length: 0\r\n')]) {
      const f = BodyFramer.forRequest(h);
      assert.equal(f.kind, 'none');
      assert.equal(f.done, true);
      assert.deepEqual(f.scan(Buffer.from('GET / HTTP/1.1'), 0, 14), { consumed: 0, done: true, error: undefined });
    }
  });

  it('responses to HEAD, and 1xx, 204 and 304 responses, have no body whatever their fields say', () => {
    const cases: [string, string][] = [
      ['200 OK\r\nContent-Length: 10', 'HEAD'],
      ['200 OK\r\nTransfer-Encoding: chunked', 'HEAD'],
      ['100 Continue', 'POST'],
      ['103 Early Hints\r\nLink: </a.css>', 'GET'],
      ['101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket', 'GET'],
      ['204 No Content', 'DELETE'],
      ['304 Not Modified\r\nContent-Length: 1234', 'GET'],
      ['200 Connection Established', 'CONNECT'],
    ];
    for (const [head, method] of cases) {
      const f = BodyFramer.forResponse(responseHead(`${head}\r\n`, method), method);
      assert.equal(f.kind, 'none', head);
      assert.equal(f.done, true);
      assert.equal(f.untilClose, false);
    }
  });

  it('other responses: chunked, then Content-Length, else until the connection closes', () => {
    assert.equal(BodyFramer.forResponse(responseHead('200 OK\r\nTransfer-Encoding: chunked\r\n'), 'GET').kind, 'chunked');
    assert.equal(BodyFramer.forResponse(responseHead('404 Not Found\r\nContent-Length: 9\r\n'), 'GET').kind, 'length');
    assert.equal(BodyFramer.forResponse(responseHead('200 OK\r\nContent-Length: 0\r\n'), 'GET').kind, 'none');
    assert.equal(BodyFramer.forResponse(responseHead('407 Proxy Auth\r\nContent-Length: 3\r\n', 'CONNECT'), 'CONNECT').kind, 'length');
    const f = BodyFramer.forResponse(responseHead('200 OK\r\n'), 'GET');
    assert.equal(f.kind, 'close');
    assert.equal(f.untilClose, true);
    const buf = Buffer.from('all of this');
    assert.deepEqual(f.scan(buf, 0, buf.length), { consumed: buf.length, done: false, error: undefined });
    assert.equal(f.done, false);
  });
});

describe('BodyFramer: Content-Length', TIMEOUT, () => {
  it('counts down across reads and stops at the next pipelined message', () => {
    const f = BodyFramer.forRequest(requestHead('Content-Length: 10\r\n'));
    const buf = Buffer.from('0123456789GET / HTTP/1.1\r\n');
    assert.deepEqual(f.scan(buf, 0, 4), { consumed: 4, done: false, error: undefined });
    assert.equal(f.remainingLength, 6);
    assert.deepEqual(f.scan(buf, 4, buf.length), { consumed: 6, done: true, error: undefined });
    assert.deepEqual(f.scan(buf, 10, buf.length), { consumed: 0, done: true, error: undefined });
  });

  it('re-arms for the next message without a new object', () => {
    const f = BodyFramer.forRequest(requestHead('Content-Length: 2\r\n'));
    assert.equal(f.scan(Buffer.from('ok'), 0, 2).done, true);
    f.setForRequest(CHUNKED);
    assert.equal(f.kind, 'chunked');
    const b = Buffer.from('0\r\n\r\n');
    assert.deepEqual(f.scan(b, 0, b.length), { consumed: 5, done: true, error: undefined });
  });
});

describe('BodyFramer: chunked', TIMEOUT, () => {
  it('a simple body, at once, split at every byte, and byte by byte', () => {
    const text = '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    assert.deepEqual(chunked(text), { consumed: text.length, done: true, error: undefined });
  });

  it('hex sizes in either case, with leading zeros', () => {
    const text = `A\r\n${'x'.repeat(10)}\r\n1f\r\n${'y'.repeat(31)}\r\n0000000000000010\r\n${'z'.repeat(16)}\r\n00\r\n\r\n`;
    assert.deepEqual(chunked(text), { consumed: text.length, done: true, error: undefined });
  });

  it('chunk extensions are skipped: names, values, quoted strings, BWS before ";"', () => {
    const text = '5;name=value;flag\r\nhello\r\n3 ;a="q;\\"x"\t; b = c\r\nabc\r\n0;last=1\r\n\r\n';
    assert.deepEqual(chunked(text), { consumed: text.length, done: true, error: undefined });
  });

  it('trailer fields after the last chunk are passed through', () => {
    const text = '3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nServer-Timing: db;dur=53\r\nEmpty:\r\n\r\n';
    assert.deepEqual(chunked(text), { consumed: text.length, done: true, error: undefined });
  });

  it('stops exactly at the end of the body when the next request follows', () => {
    const body = '4\r\nabcd\r\n0\r\nT: 1\r\n\r\n';
    const buf = Buffer.from(`${body}GET / HTTP/1.1\r\nHost: a\r\n\r\n`);
    const f = BodyFramer.forRequest(CHUNKED);
    assert.deepEqual(f.scan(buf, 0, buf.length), { consumed: body.length, done: true, error: undefined });
    const next = parseRequestHead(buf, body.length);
    assert.equal(next.kind, 'head');
    assert.deepEqual(f.scan(buf, body.length, buf.length), { consumed: 0, done: true, error: undefined });
  });

  it('skips chunk data in one step however large', () => {
    const size = 1 << 20;
    const buf = Buffer.alloc(size + 20, 0x61);
    const headLen = buf.write(`${size.toString(16)}\r\n`, 0);
    const f = BodyFramer.forRequest(CHUNKED);
    assert.deepEqual(f.scan(buf, 0, headLen + size), { consumed: headLen + size, done: false, error: undefined });
    const tail = Buffer.from('\r\n0\r\n\r\n');
    assert.deepEqual(f.scan(tail, 0, tail.length), { consumed: tail.length, done: true, error: undefined });
  });

  it('rejects chunk sizes that are not hex, empty, signed or too long', () => {
    const bad: [string, RegExp][] = [
      ['g\r\n', /does not start with a hex digit \("g"\)/],
      ['\r\n', /does not start with a hex digit \(CR\)/],
      ['-1\r\n', /does not start with a hex digit/],
      ['+1\r\n', /does not start with a hex digit/],
      [' 1\r\n', /does not start with a hex digit/],
      ['0x10\r\n', /invalid character "x" in a chunk size/],
      ['1g\r\n', /invalid character "g" in a chunk size/],
      ['00000000000000001\r\n', /more than 16 hex digits/],
      ['20000000000000\r\n', /larger than 2\^53-1/],
      ['ffffffffffffffff\r\n', /larger than 2\^53-1/],
      ['5 x\r\n', /only ";" extensions may follow/],
      ['5 \r\n', /only ";" extensions may follow/],
    ];
    for (const [text, reason] of bad) {
      const r = chunked(text);
      assert.equal(r.done, false, text);
      assert.match(r.error ?? '', reason, text);
    }
    assert.deepEqual(chunked('1fffffffffffff\r\n').error, undefined);
  });

  it('rejects chunk data not followed by CRLF, and bare LF', () => {
    const bad: [string, RegExp][] = [
      ['5\r\nhelloX\r\n', /chunk data not followed by CRLF/],
      ['5\r\nhelloX\n0\r\n\r\n', /chunk data not followed by CRLF/],
      ['5\r\nhello\rX', /chunk data not followed by CRLF/],
      ['5\r\nhello\n0\r\n\r\n', /chunk data not followed by CRLF/],
      ['5\nhello\r\n', /invalid character LF in a chunk size/],
      ['5\rhello\r\n', /chunk-size line not ended by CRLF/],
      ['5;a\nhello\r\n', /control character LF in a chunk extension/],
      ['3\r\nabcd\r\n0\r\n\r\n', /chunk data not followed by CRLF/],
      ['0\r\n\n', /bare CR|invalid character LF/],
      ['0\r\n\rX', /bare CR at the end of the chunked body/],
    ];
    for (const [text, reason] of bad) assert.match(chunked(text).error ?? '', reason, text);
  });

  it('rejects control characters in, and overlong, chunk extensions', () => {
    assert.match(chunked('5;a=\x00\r\nhello\r\n').error ?? '', /control character 0x00 in a chunk extension/);
    const long = `5;${'e'.repeat(MAX_CHUNK_EXTENSION_BYTES)}\r\nhello\r\n0\r\n\r\n`;
    assert.equal(feed(Buffer.from(long), []).error, undefined);
    const tooLong = `5;${'e'.repeat(MAX_CHUNK_EXTENSION_BYTES + 1)}\r\nhello\r\n`;
    assert.match(feed(Buffer.from(tooLong), []).error ?? '', /chunk extension longer than 16384 bytes/);
  });

  it('rejects malformed and oversized trailer sections', () => {
    assert.match(chunked('0\r\n folded: x\r\n\r\n').error ?? '', /obs-fold/);
    assert.match(chunked('0\r\nX : y\r\n\r\n').error ?? '', /invalid character SP in a trailer field name/);
    assert.match(chunked('0\r\n: y\r\n\r\n').error ?? '', /invalid character ":" in a trailer field name/);
    assert.match(chunked('0\r\nX: a\x01\r\n\r\n').error ?? '', /control character 0x01 in a trailer field value/);
    assert.match(chunked('0\r\nX: a\nY: b\r\n\r\n').error ?? '', /control character LF in a trailer field value/);
    assert.match(chunked('0\r\nX: a\rY\r\n\r\n').error ?? '', /bare CR in the trailer section/);
    const big = `0\r\n${'X: 0123456789abcdef\r\n'.repeat(3200)}\r\n`;
    assert.match(feed(Buffer.from(big), []).error ?? '', /trailer section larger than 61440 bytes/);
  });

  it('after an error, nothing more is consumed', () => {
    const f = BodyFramer.forRequest(CHUNKED);
    const bad = Buffer.from('zz');
    const first = f.scan(bad, 0, 2);
    assert.equal(first.consumed, 0);
    assert.match(first.error ?? '', /hex digit/);
    assert.deepEqual(f.scan(Buffer.from('0\r\n\r\n'), 0, 5), { consumed: 0, done: false, error: first.error });
    assert.equal(f.done, false);
  });
});
