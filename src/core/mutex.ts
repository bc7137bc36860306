/** A FIFO async lock: `run(fn)` waits for every earlier holder to finish. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #held = 0;

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.#held++;
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => this.#held--,
      () => this.#held--,
    );
    return result;
  }

  /** True while a holder runs or waits. */
  get busy(): boolean {
    return this.#held > 0;
  }
}
