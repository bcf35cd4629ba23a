// Reconnect delays: exponential backoff with full jitter (a uniformly random wait between 0
// and min(max, base * 2^attempt)), so clients cut off together do not come back together.

export class Backoff {
  /**
   * @param {{baseMs?: number, maxMs?: number, random?: () => number}} [opts]
   */
  constructor({ baseMs = 250, maxMs = 10_000, random = Math.random } = {}) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
    this.attempt = 0;
  }

  /** The ceiling of the next wait, before jitter. */
  ceiling() {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
  }

  /** The next wait in milliseconds; each call doubles the ceiling up to `maxMs`. */
  next() {
    const delay = Math.floor(this.random() * this.ceiling());
    this.attempt += 1;
    return delay;
  }

  /** After a successful connection: the next wait starts small again. */
  reset() {
    this.attempt = 0;
  }
}
