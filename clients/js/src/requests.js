// Requests waiting for their answer (`send` today; `edit`, `delete`, `react`, `unreact` with
// the server's event frames), by client id. Each keeps the exact frame first written, so a
// resend after a reconnect carries the same id and the server stores it once (SPEC 5.3).
// An `ack` resolves it; an `error` carrying its id rejects it (or, for `rate_limited`, asks
// for a resend later, which the client schedules).

import { ChatError } from './errors.js';

/** The field that carries a request's client id in the request, its `ack` and its `error`. */
export const ID_FIELD = 'client_msg_id';

/**
 * @typedef {object} Pending
 * @property {Record<string, unknown>} frame
 * @property {(value: any) => void} resolve
 * @property {(err: ChatError) => void} reject
 */

export class Requests {
  constructor() {
    /** @type {Map<string, Pending>} insertion order = order of the first write */
    this.pending = new Map();
  }

  /**
   * Records a request; the promise settles on its answer.
   * @param {Record<string, unknown>} frame with `frame[ID_FIELD]` set
   * @returns {Promise<any>}
   */
  add(frame) {
    const id = String(frame[ID_FIELD]);
    const existing = this.pending.get(id);
    if (existing) return Promise.reject(new ChatError('bad_request', `request ${id} is already pending`));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { frame, resolve, reject });
    });
  }

  /** @param {string} id */
  get(id) {
    return this.pending.get(id);
  }

  /** Every pending frame, oldest first (the order to write them again after a reconnect). */
  frames() {
    return [...this.pending.values()].map((p) => p.frame);
  }

  get size() {
    return this.pending.size;
  }

  /**
   * An `ack`: resolves its request with the stored message (or the whole frame when it has
   * none). False when no request waits for it (a second ack of a resend).
   * @param {Record<string, any>} ack
   */
  resolve(ack) {
    const id = ack[ID_FIELD];
    const p = id == null ? undefined : this.pending.get(String(id));
    if (!p) return false;
    this.pending.delete(String(id));
    p.resolve(ack.message ?? ack);
    return true;
  }

  /**
   * Rejects request `id`; false when none waits.
   * @param {string} id
   * @param {ChatError} err
   */
  reject(id, err) {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    p.reject(err);
    return true;
  }

  /** @param {ChatError} err */
  rejectAll(err) {
    for (const id of [...this.pending.keys()]) this.reject(id, err);
  }
}
