/**
 * Micro-benchmark of the HTTP/1.1 head parser: ns per parsed head for a typical request
 * (8 header fields, browser-style mixed-case names) and response, plus the serialisers
 * and the body framer. Not run by the tests.
 *
 * Build and run (from the repository root):
 *   npx tsc -p bench/tsconfig.json && node dist/bench/h1-parser.js [iterations]
 * Pin it to a core for steadier numbers: `taskset -c 1 node dist/bench/h1-parser.js`.
 */
import { BodyFramer } from '../src/proxy/http/h1-body.js';
import { parseRequestHead, parseResponseHead, type RequestHead } from '../src/proxy/http/h1-parser.js';
import { serializeRequestHead, stripHopByHop } from '../src/proxy/http/headers.js';

const REQUEST = Buffer.from(
  'GET /api/v1/reviews/0?user=jason&limit=20 HTTP/1.1\r\n' +
    'Host: reviews.default.svc.cluster.local:9080\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0\r\n' +
    'Accept: application/json, text/plain, */*\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.9\r\n' +
    'X-Request-Id: 3f9c2a8e-1b7d-4c4e-9f0a-6d2b8e7c1a55\r\n' +
    'Cookie: session=abc123; theme=dark\r\n' +
    'Connection: keep-alive\r\n' +
    '\r\n',
  'latin1',
);

const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\n' +
    'Content-Type: application/json\r\n' +
    'Content-Length: 2\r\n' +
    'Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n' +
    'Server: envoy\r\n' +
    'X-Envoy-Upstream-Service-Time: 3\r\n' +
    '\r\nok',
  'latin1',
);

const CHUNKED = Buffer.from('1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n400\r\n' + 'x'.repeat(1024) + '\r\n0\r\nx-trailer: 1\r\n\r\n', 'latin1');

let sink = 0;

/** Runs `op` `n` times per round; prints the best and median ns per operation over the rounds. */
function measure(name: string, n: number, op: () => number): void {
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += op();
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  rounds.sort((a, b) => a - b);
  const best = rounds[0] as number;
  const median = rounds[3] as number;
  console.log(`${name.padEnd(44)} best ${best.toFixed(0).padStart(6)} ns   median ${median.toFixed(0).padStart(6)} ns`);
}

function parseRequest(): number {
  const r = parseRequestHead(REQUEST, 0);
  return r.kind === 'head' ? r.head.headBytes : 0;
}

function parseResponse(): number {
  const r = parseResponseHead(RESPONSE, 0, 'GET');
  return r.kind === 'head' ? r.head.headBytes : 0;
}

const parsed = parseRequestHead(REQUEST, 0);
if (parsed.kind !== 'head') throw new Error(`benchmark request does not parse: ${JSON.stringify(parsed)}`);
const head: RequestHead = parsed.head;

function forward(): number {
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  return serializeRequestHead(head.method, head.target, headers).length;
}

const chunkedHead: RequestHead = { ...head, chunked: true, contentLength: -1 };
const framer = BodyFramer.forRequest(chunkedHead);

function frameChunked(): number {
  framer.setForRequest(chunkedHead);
  return framer.scan(CHUNKED, 0, CHUNKED.length).consumed;
}

const n = Number(process.argv[2] ?? 200_000);
console.log(`node ${process.version}, ${n} iterations per round, 7 rounds`);
console.log(`request head: ${REQUEST.length} bytes, ${head.headers.length / 2} fields; response head: ${RESPONSE.length - 2} bytes`);
measure('parseRequestHead (typical request)', n, parseRequest);
measure('parseResponseHead (typical response)', n, parseResponse);
measure('stripHopByHop + serializeRequestHead', n, forward);
measure(`BodyFramer chunked scan (${CHUNKED.length} bytes)`, n, frameChunked);
if (sink === 42) console.log('');
