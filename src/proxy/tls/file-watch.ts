/**
 * Watches the directories of a set of files and reports, debounced, which directories
 * saw a change to one of them. Directories, not files: a Kubernetes Secret (or
 * ConfigMap) volume updates its files by swapping the `..data` symlink in the directory,
 * so the file's own inode never changes, and a file replaced by rename is a new inode that
 * a per-file watch would miss. What changed is then decided by reading the content
 * (rotation.ts), so a spurious event costs a read, never a reload.
 *
 * The debounce lets a certificate and its key written one after the other arrive
 * together. One timer for the whole watcher, no polling.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** The symlink a Kubernetes atomic-writer volume swaps to publish new files. */
const K8S_DATA_LINK = '..data';

export const DEFAULT_DEBOUNCE_MS = 150;

interface WatchedDir {
  readonly watcher: FSWatcher;
  names: Set<string>;
}

export class DirectoryWatcher {
  readonly #dirs = new Map<string, WatchedDir>();
  readonly #pending = new Set<string>();
  readonly #onChange: (dirs: ReadonlySet<string>) => void;
  readonly #onError: (dir: string, err: Error) => void;
  readonly #debounceMs: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(onChange: (dirs: ReadonlySet<string>) => void, onError: (dir: string, err: Error) => void, debounceMs = DEFAULT_DEBOUNCE_MS) {
    this.#onChange = onChange;
    this.#onError = onError;
    this.#debounceMs = debounceMs;
  }

  /** Watches exactly the directories of `files` (stops watching the others). */
  watch(files: Iterable<string>): void {
    const wanted = new Map<string, Set<string>>();
    for (const f of files) {
      const abs = resolve(f);
      const dir = dirname(abs);
      let names = wanted.get(dir);
      if (names === undefined) wanted.set(dir, (names = new Set()));
      names.add(basename(abs));
    }
    for (const [dir, w] of this.#dirs) {
      if (wanted.has(dir)) continue;
      w.watcher.close();
      this.#dirs.delete(dir);
    }
    for (const [dir, names] of wanted) {
      const w = this.#dirs.get(dir);
      if (w !== undefined) w.names = names;
      else this.#start(dir, names);
    }
  }

  /** The directories watched now. */
  get directories(): string[] {
    return [...this.#dirs.keys()];
  }

  close(): void {
    this.watch([]);
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending.clear();
  }

  #start(dir: string, names: Set<string>): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => this.#event(dir, name));
    } catch (err) {
      this.#onError(dir, err as Error);
      return;
    }
    watcher.on('error', (err) => {
      // The directory went away (or the watch broke): forget it, so the next watch() retries.
      watcher.close();
      if (this.#dirs.get(dir)?.watcher === watcher) this.#dirs.delete(dir);
      this.#onError(dir, err);
    });
    this.#dirs.set(dir, { watcher, names });
  }

  #event(dir: string, name: string | Buffer | null): void {
    const w = this.#dirs.get(dir);
    if (w === undefined) return;
    const n = name === null ? null : String(name);
    // No name (some platforms) means "something in here changed": check the files.
    if (n !== null && n !== K8S_DATA_LINK && !w.names.has(n)) return;
    this.#pending.add(dir);
    if (this.#timer === null) this.#timer = setTimeout(() => this.#flush(), this.#debounceMs).unref();
    else this.#timer.refresh(); // a burst of writes is read once, after it settles
  }

  #flush(): void {
    this.#timer = null;
    const dirs = new Set(this.#pending);
    this.#pending.clear();
    this.#onChange(dirs);
  }
}
