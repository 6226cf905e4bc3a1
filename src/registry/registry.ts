/**
 * The interface every registry source implements (configuration files, run-time
 * registrations, Kubernetes, and the aggregate of several). The control plane reads
 * snapshots and re-translates when told something changed; it never sees how a source
 * learns about services. Pattern: go-control-plane's snapshot cache, grpc-js resolvers.
 */
import type { RegistrySnapshot } from './model.js';

export interface Registry {
  /**
   * The current snapshot. Returns the same object until something changes, so callers
   * may compare snapshots by identity (or by `version`) to skip work. Never throws.
   */
  snapshot(): RegistrySnapshot;

  /**
   * Calls `onChange` synchronously, once per change, after the new snapshot is in place
   * (`snapshot()` inside the callback returns it). A change is anything that makes a new
   * snapshot; an update that changes nothing does not call it. Callbacks must not throw:
   * an exception reaches whoever made the change (an `update` caller, a timer) after the
   * other callbacks ran. Returns the function that unsubscribes (idempotent).
   */
  subscribe(onChange: () => void): () => void;
}
