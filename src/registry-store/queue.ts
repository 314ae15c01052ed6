// SPDX-License-Identifier: Apache-2.0
/**
 * An unbounded push/pull queue that turns callback events (an etcd watcher, an apiserver watch
 * stream) into an async iterator. `end()` finishes the iteration after the queued items;
 * `fail(err)` makes the next pull throw once the queued items are consumed; an aborted
 * `signal` ends it at once.
 */
export class EventQueue<T> {
  readonly #items: T[] = [];
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  fail(err: unknown): void {
    this.#error ??= err;
    this.end();
  }

  async *drain(signal: AbortSignal): AsyncGenerator<T> {
    const onAbort = () => this.#wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const item = this.#items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.#ended) {
          if (this.#error !== undefined) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
