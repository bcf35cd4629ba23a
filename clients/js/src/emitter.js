// A minimal event emitter that works the same in browsers and Node (no `node:events`).

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /**
   * Calls `fn` for every `event`; returns a function that removes it.
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void}
   */
  on(event, fn) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /**
   * Calls `fn` for the next `event` only.
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void}
   */
  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /** @param {string} event @param {Function} fn */
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  /**
   * Calls every listener of `event`. A listener that throws does not stop the others or the
   * client: the exception is rethrown asynchronously, where it is reported as uncaught.
   * @param {string} event
   * @param {...unknown} args
   */
  emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
