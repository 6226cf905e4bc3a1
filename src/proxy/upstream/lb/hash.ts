/**
 * xxHash64 (seed 0 unless given), the hash Envoy uses for ring hash and Maglev entries and
 * for route hash policies (`HashUtil::xxHash64`), in plain JS without BigInt: each 64-bit
 * value is a pair of unsigned 32-bit halves, products are built from 16-bit limbs. Using
 * Envoy's function means a Trellis proxy, Envoy and grpc-js-xds (which also uses xxHash64,
 * per gRFC A42) build the same ring and Maglev table for the same hosts.
 *
 * A 64-bit hash leaves this module as a number `hi * 2^32 + lo` rounded to a double (53
 * significant bits): ring lookups compare such numbers, which orders them as the exact
 * values except for two values within 2^11 of each other (chance ~2^-52 per entry).
 * Maglev's `hash % tableSize` on the rounded value differs from Envoy's exact modulo, so
 * the key → slot step is consistent among Trellis proxies but not with Envoy's.
 *
 * The 64-bit arithmetic passes results through a module-level register pair, so hashing
 * allocates nothing (it runs per request for hash policies).
 */

// The xxHash64 primes, as (high, low) halves.
const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;
/** 2^64 - P1, for the fourth accumulator's `seed - P1`. */
const NEG_P1H = 0x61c8864e;
const NEG_P1L = 0x7a143579;

const TWO_POW_32 = 4294967296;

/**
 * Result registers of the 64-bit helpers below: [high, low]. Internally every 32-bit half
 * is kept as a signed int32 (V8's fast integer representation; only `add` needs the
 * unsigned value). A typed array, not two module variables, because storing a number
 * that is not a small integer into a variable V8 keeps in a context allocates a heap
 * number each time; a typed-array store does not. (Typed as a pair so that reads are
 * `number` under noUncheckedIndexedAccess.)
 */
const R = new Int32Array(2) as unknown as [number, number];

/** R = a + b mod 2^64. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = (al >>> 0) + (bl >>> 0);
  R[1] = lo | 0;
  R[0] = (ah + bh + (lo >= TWO_POW_32 ? 1 : 0)) | 0;
}

/** R = a × b mod 2^64: al × bl exactly from 16-bit limbs, the cross terms mod 2^32. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  R[1] = (mid << 16) | (p00 & 0xffff);
  R[0] = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ah, bl) + Math.imul(al, bh)) | 0;
}

/** R = rotate-left(x, r) for 0 < r < 32 (every rotation xxHash64 uses). */
function rotl(h: number, l: number, r: number): void {
  R[0] = (h << r) | (l >>> (32 - r));
  R[1] = (l << r) | (h >>> (32 - r));
}

/** R = xxHash64's round: rotl(acc + input × P2, 31) × P1. */
function round(acch: number, accl: number, inh: number, inl: number): void {
  mul(inh, inl, P2H, P2L);
  add(acch, accl, R[0], R[1]);
  rotl(R[0], R[1], 31);
  mul(R[0], R[1], P1H, P1L);
}

/** R = (acc ^ round(0, v)) × P1 + P4. */
function mergeRound(acch: number, accl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul(acch ^ R[0], accl ^ R[1], P1H, P1L);
  add(R[0], R[1], P4H, P4L);
}

function read32(b: Uint8Array, p: number): number {
  return (b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 24);
}

/**
 * The 32-byte stripes of an input of 32 bytes or more: four accumulators, merged into R.
 * Returns the offset of the tail. (A function of its own so that the short-key path of
 * xxHash64 stays small enough for V8 to inline its helpers.)
 */
function stripes(bytes: Uint8Array, length: number, seed: number): number {
  let p = 0;
  add(0, seed, P1H, P1L);
  add(R[0], R[1], P2H, P2L);
  let v1h = R[0];
  let v1l = R[1];
  add(0, seed, P2H, P2L);
  let v2h = R[0];
  let v2l = R[1];
  let v3h = 0;
  let v3l = seed | 0;
  add(0, seed, NEG_P1H, NEG_P1L);
  let v4h = R[0];
  let v4l = R[1];
  const limit = length - 32;
  do {
    round(v1h, v1l, read32(bytes, p + 4), read32(bytes, p));
    v1h = R[0];
    v1l = R[1];
    round(v2h, v2l, read32(bytes, p + 12), read32(bytes, p + 8));
    v2h = R[0];
    v2l = R[1];
    round(v3h, v3l, read32(bytes, p + 20), read32(bytes, p + 16));
    v3h = R[0];
    v3l = R[1];
    round(v4h, v4l, read32(bytes, p + 28), read32(bytes, p + 24));
    v4h = R[0];
    v4l = R[1];
    p += 32;
  } while (p <= limit);
  rotl(v1h, v1l, 1);
  let hh = R[0];
  let hl = R[1];
  rotl(v2h, v2l, 7);
  add(hh, hl, R[0], R[1]);
  hh = R[0];
  hl = R[1];
  rotl(v3h, v3l, 12);
  add(hh, hl, R[0], R[1]);
  hh = R[0];
  hl = R[1];
  rotl(v4h, v4l, 18);
  add(hh, hl, R[0], R[1]);
  mergeRound(R[0], R[1], v1h, v1l);
  mergeRound(R[0], R[1], v2h, v2l);
  mergeRound(R[0], R[1], v3h, v3l);
  mergeRound(R[0], R[1], v4h, v4l);
  return p;
}

/**
 * xxHash64 of `bytes[0, length)` with a seed in [0, 2^32); writes the high half to
 * `out[0]` and the low half to `out[1]`. Allocates nothing.
 */
export function xxHash64(bytes: Uint8Array, length: number, seed: number, out: Uint32Array): void {
  let p = 0;
  if (length >= 32) {
    p = stripes(bytes, length, seed);
  } else {
    add(0, seed, P5H, P5L);
  }
  let hh = R[0];
  let hl = R[1];
  add(hh, hl, 0, length);
  hh = R[0];
  hl = R[1];
  while (p + 8 <= length) {
    round(0, 0, read32(bytes, p + 4), read32(bytes, p));
    rotl(hh ^ R[0], hl ^ R[1], 27);
    mul(R[0], R[1], P1H, P1L);
    add(R[0], R[1], P4H, P4L);
    hh = R[0];
    hl = R[1];
    p += 8;
  }
  if (p + 4 <= length) {
    mul(0, read32(bytes, p), P1H, P1L);
    rotl(hh ^ R[0], hl ^ R[1], 23);
    mul(R[0], R[1], P2H, P2L);
    add(R[0], R[1], P3H, P3L);
    hh = R[0];
    hl = R[1];
    p += 4;
  }
  while (p < length) {
    mul(0, bytes[p] as number, P5H, P5L);
    rotl(hh ^ R[0], hl ^ R[1], 11);
    mul(R[0], R[1], P1H, P1L);
    hh = R[0];
    hl = R[1];
    p++;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl ^= hh >>> 1;
  mul(hh, hl, P2H, P2L);
  hh = R[0] ^ (R[0] >>> 29);
  hl = R[1] ^ ((R[1] >>> 29) | (R[0] << 3));
  mul(hh, hl, P3H, P3L);
  out[0] = R[0];
  out[1] = R[1] ^ R[0];
}

/** The scratch buffer keys are encoded into (grown as needed, never shrunk). */
let scratch = new Uint8Array(256);
const OUT = new Uint32Array(2);

/**
 * Writes the UTF-8 encoding of `s` (lone surrogates as U+FFFD, like TextEncoder) into the
 * scratch buffer at `at`; returns the end offset. Hand-rolled because TextEncoder's
 * `encodeInto` returns an object per call.
 */
export function encodeUtf8(s: string, at: number): number {
  reserveScratch(at + s.length * 3);
  const b = scratch;
  let j = at;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      b[j++] = c;
      continue;
    }
    if (c < 0x800) {
      b[j++] = 0xc0 | (c >> 6);
      b[j++] = 0x80 | (c & 0x3f);
      continue;
    }
    if (c >= 0xd800 && c < 0xe000) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        b[j++] = 0xf0 | (c >> 18);
        b[j++] = 0x80 | ((c >> 12) & 0x3f);
        b[j++] = 0x80 | ((c >> 6) & 0x3f);
        b[j++] = 0x80 | (c & 0x3f);
        continue;
      }
      c = 0xfffd;
    }
    b[j++] = 0xe0 | (c >> 12);
    b[j++] = 0x80 | ((c >> 6) & 0x3f);
    b[j++] = 0x80 | (c & 0x3f);
  }
  return j;
}

/** Grows the scratch buffer, keeping its contents, to hold at least `bytes` bytes. */
export function reserveScratch(bytes: number): void {
  if (scratch.length >= bytes) return;
  const grown = new Uint8Array(Math.max(bytes, scratch.length * 2));
  grown.set(scratch);
  scratch = grown;
}

/** The current scratch buffer (valid until the next encodeUtf8 or reserveScratch that grows it). */
export function scratchBytes(): Uint8Array {
  return scratch;
}

/** `hi * 2^32 + lo` as a number (rounded to 53 significant bits). */
export function hashNumber(out: Uint32Array): number {
  return (out[0] as number) * TWO_POW_32 + (out[1] as number);
}

/**
 * The key hash a route hash policy passes to `pick()` as `PickContext.hash`: xxHash64
 * (seed 0) of the key's UTF-8 bytes, as Envoy hashes a header value, cookie or source IP.
 * Allocates nothing.
 */
export function hashKey(key: string): number {
  const length = encodeUtf8(key, 0);
  xxHash64(scratch, length, 0, OUT);
  return hashNumber(OUT);
}

/** xxHash64 of a string into `out` (high, low), with a seed; for building rings and tables. */
export function hashString(key: string, seed: number, out: Uint32Array): void {
  const length = encodeUtf8(key, 0);
  xxHash64(scratch, length, seed, out);
}

/** The exact unsigned 64-bit value (out[0], out[1]) modulo m, for 1 <= m < 2^37. */
export function hashMod(out: Uint32Array, m: number): number {
  // (hi × 2^32 + lo) mod m, with each product below 2^53.
  const hi = (out[0] as number) % m;
  return ((((hi * 65536) % m) * 65536) % m + (out[1] as number)) % m;
}

/**
 * The string Envoy hashes for a host: `Address::Instance::asString()`, i.e. `ip:port`, or
 * `[ip]:port` for IPv6.
 */
export function hostHashKey(address: string, port: number): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]:${port}` : `${address}:${port}`;
}
