/** xxHash64 against reference vectors, hashKey, the exact 64-bit modulo, UTF-8 encoding. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeUtf8, hashKey, hashMod, hashString, hostHashKey, scratchBytes, xxHash64 } from '../../../src/proxy/upstream/lb/hash.js';
import { XorShift32 } from '../../../src/proxy/upstream/lb/prng.js';

function hex(key: string, seed = 0): string {
  const out = new Uint32Array(2);
  hashString(key, seed, out);
  return (out[0] as number).toString(16).padStart(8, '0') + (out[1] as number).toString(16).padStart(8, '0');
}

describe('xxHash64', { timeout: 10_000 }, () => {
  it('matches the reference implementation (vectors from xxhash / xxhash-wasm) for every length class', () => {
    assert.equal(hex(''), 'ef46db3751d8e999');
    assert.equal(hex('a'), 'd24ec4f1a98c6e5b');
    assert.equal(hex('abc'), '44bc2cf5ad770999');
    assert.equal(hex('abcd'), 'de0327b0d25d92cc');
    assert.equal(hex('abcdefgh'), '3ad351775b4634b7');
    assert.equal(hex('10.0.0.1:8080_0'), '23a29ae775dfd4a3');
    assert.equal(hex('The quick brown fox jumps over the lazy dog'), '0b242d361fda71bc');
    assert.equal(hex('0123456789'.repeat(10)), 'f80e7b96315afffa');
    assert.equal(hex('héllo wörld ✓ 😀'), '48f36cdd446de87d');
  });

  it('takes a seed (Maglev hashes with seeds 0 and 1)', () => {
    assert.equal(hex('10.0.0.1:8080', 1), '0dfce9efd349b428');
    assert.equal(hex('[::1]:80', 1), '3d4a1d5a7d97b32e');
  });

  it("equals Envoy's HashUtil::xxHash64(\"foo\") = 3728699739546630719 (hash_test.cc)", () => {
    assert.equal(BigInt(`0x${hex('foo')}`), 3728699739546630719n);
  });

  it('hashes a byte range without reading past its length', () => {
    const bytes = new TextEncoder().encode('abcXYZ');
    const out = new Uint32Array(2);
    xxHash64(bytes, 3, 0, out);
    assert.equal((out[0] as number).toString(16) + (out[1] as number).toString(16).padStart(8, '0'), '44bc2cf5ad770999');
  });
});

describe('hashKey', { timeout: 10_000 }, () => {
  it('is the 64-bit hash as a number: hi × 2^32 + lo, in [0, 2^64)', () => {
    assert.equal(hashKey('foo'), Number(3728699739546630719n));
    assert.equal(hashKey('foo'), hashKey('foo'));
    assert.notEqual(hashKey('foo'), hashKey('fop'));
    const h = hashKey('user-1');
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 64);
  });
});

describe('hashMod', { timeout: 10_000 }, () => {
  it('is the exact unsigned 64-bit modulo (checked against BigInt)', () => {
    const rng = new XorShift32(9);
    const out = new Uint32Array(2);
    for (const m of [2, 100, 65536, 65537, 5000011, 2 ** 36 - 5]) {
      for (let i = 0; i < 200; i++) {
        out[0] = rng.next();
        out[1] = rng.next();
        const exact = ((BigInt(out[0] as number) << 32n) | BigInt(out[1] as number)) % BigInt(m);
        assert.equal(BigInt(hashMod(out, m)), exact);
      }
    }
  });
});

describe('encodeUtf8', { timeout: 10_000 }, () => {
  it('agrees with TextEncoder, lone surrogates included', () => {
    const samples = ['', 'ascii', 'é', '€uro', '😀', 'a\ud800b', '\udc00', 'x\ud83d', 'ü'.repeat(500)];
    for (const s of samples) {
      const end = encodeUtf8(s, 0);
      assert.deepEqual(scratchBytes().slice(0, end), new TextEncoder().encode(s), JSON.stringify(s));
    }
  });
});

describe('hostHashKey', () => {
  it("is Envoy's Address::asString: ip:port, [ipv6]:port", () => {
    assert.equal(hostHashKey('10.0.0.1', 8080), '10.0.0.1:8080');
    assert.equal(hostHashKey('fd00::1', 80), '[fd00::1]:80');
  });
});
