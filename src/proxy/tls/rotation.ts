/**
 * Certificates rotated without a restart or a push, as Istio's agent does for
 * file-mounted gateway certificates: the files the live TLS contexts were read from are
 * watched (file-watch.ts); after a change, each context with a file in a changed
 * directory reads its material again and, when it differs, validates and swaps it
 * (`RotatableTls.rotate`). Invalid material (a new certificate whose key has not been
 * written yet, a half-written file) leaves the current material serving, with one
 * warning naming the files and the reason; the next change event tries again.
 *
 * The configuration says which contexts are live after every change (`track`); files no
 * live context uses any more stop being watched.
 */
import { dirname, resolve } from 'node:path';
import type { Logger } from '../../core/log.js';
import { DirectoryWatcher } from './file-watch.js';
import { changedFiles, fileList, type RotatableTls } from './rotatable.js';

export const TLS_OWNERS = { listener: 'listener', cluster: 'cluster' } as const;
export type TlsOwner = (typeof TLS_OWNERS)[keyof typeof TLS_OWNERS];

/** A live TLS context and what it belongs to. */
export interface TlsTarget {
  /** `listener <name> chain <chain>` or `cluster <name>`, for logs and `/certs`. */
  readonly name: string;
  readonly owner: TlsOwner;
  readonly tls: RotatableTls;
}

export class CertificateRotation {
  readonly #log: Logger;
  readonly #onRotated: (targets: readonly TlsTarget[]) => void;
  readonly #watcher: DirectoryWatcher;
  #targets: readonly TlsTarget[] = [];

  /** `onRotated` gets the targets whose material was swapped by one change event. */
  constructor(log: Logger, onRotated: (targets: readonly TlsTarget[]) => void, debounceMs?: number) {
    this.#log = log;
    this.#onRotated = onRotated;
    this.#watcher = new DirectoryWatcher(
      (dirs) => this.#changed(dirs),
      (dir, err) => log.warn('cannot watch certificate directory: rotated certificates there are read only when the configuration is sent again', { dir, code: (err as NodeJS.ErrnoException).code, err: err.message }),
      debounceMs,
    );
  }

  /** The live contexts; their files are watched from now on, others no longer. */
  track(targets: readonly TlsTarget[]): void {
    this.#targets = targets;
    this.#watcher.watch(targets.flatMap((t) => fileList(t.tls.files)));
  }

  get targets(): readonly TlsTarget[] {
    return this.#targets;
  }

  /** The directories watched now. */
  get directories(): readonly string[] {
    return this.#watcher.directories;
  }

  close(): void {
    this.#watcher.close();
    this.#targets = [];
  }

  #changed(dirs: ReadonlySet<string>): void {
    const rotated: TlsTarget[] = [];
    for (const t of this.#targets) {
      const files = fileList(t.tls.files);
      if (files.some((f) => dirs.has(dirname(resolve(f)))) && this.#reload(t, files)) rotated.push(t);
    }
    if (rotated.length > 0) this.#onRotated(rotated);
  }

  /** Re-reads `t`'s material and swaps it in if it changed and is valid. */
  #reload(t: TlsTarget, files: readonly string[]): boolean {
    const before = t.tls.material;
    try {
      const material = t.tls.read();
      if (!t.tls.rotate(material)) return false;
      this.#log.info('certificate rotated', { tls: t.name, files: changedFiles(t.tls.files, before, material) });
      return true;
    } catch (err) {
      // The message names the field and file, never the material (data-source.ts).
      this.#log.warn('rotated certificate not usable: the previous one keeps serving', { tls: t.name, files, reason: (err as Error).message });
      return false;
    }
  }
}
