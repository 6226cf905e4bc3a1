/** releaseStartupMemory: runs a collection and trims the C heap, leaving nothing behind. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { releaseStartupMemory } from '../../src/cli/idle-memory.js';
import { nativeAddon } from '../../src/proxy/listener/fast-accept.js';

/**
 * Resolves when an object that only this function made becomes garbage and is collected
 * (a separate function, so that no frame of the caller still refers to it); rejects after
 * 5 s. Nothing else in this test process runs a full collection meanwhile.
 */
function garbageCollected(): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the object was not collected')), 5_000);
    const registry = new FinalizationRegistry(() => {
      clearTimeout(deadline);
      resolve();
    });
    registry.register({ garbage: 'x'.repeat(64) }, 'collected');
    (globalThis as { keepRegistry?: unknown }).keepRegistry = registry;
  });
}

describe('releaseStartupMemory', () => {
  it('collects garbage without exposing gc to the program', async () => {
    const before = (globalThis as { gc?: unknown }).gc;
    const collected = garbageCollected();
    releaseStartupMemory();
    assert.equal((globalThis as { gc?: unknown }).gc, before, 'no global gc added');
    // The registry's callback runs on the loop once the collection found the object.
    await collected;
  });

  it('trims the C heap through the native helper when it is built', (t) => {
    const addon = nativeAddon();
    if (addon?.mallocTrim === undefined) return t.skip('native helper not built, or built before mallocTrim');
    assert.equal(typeof addon.mallocTrim(), 'boolean');
  });
});
