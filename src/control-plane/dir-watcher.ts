/**
 * Watches a configuration directory and calls `onChange` (debounced) when anything under
 * it may have changed. `fs.watch` is fast but can miss events (editors that replace
 * files, network file systems), so a slow poll backs it up; the store's rescan is cheap
 * when nothing changed.
 */
import { watch, type FSWatcher } from 'node:fs';

export const WATCH_SETTLE_MS = 30;
export const POLL_INTERVAL_MS = 2_000;

export class DirWatcher {
  readonly #watcher: FSWatcher | undefined;
  readonly #poll: NodeJS.Timeout;
  #settle: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(dir: string, onChange: () => void, options: { pollMs?: number } = {}) {
    const fire = (): void => {
      if (this.#closed) return;
      clearTimeout(this.#settle);
      this.#settle = setTimeout(onChange, WATCH_SETTLE_MS);
      this.#settle.unref();
    };
    try {
      this.#watcher = watch(dir, { recursive: true, persistent: false }, fire);
      this.#watcher.on('error', () => undefined); // the poll keeps working
    } catch {
      this.#watcher = undefined;
    }
    this.#poll = setInterval(onChange, options.pollMs ?? POLL_INTERVAL_MS);
    this.#poll.unref();
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
  }
}
