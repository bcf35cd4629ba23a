// The two error types: a refusal over the WebSocket (`error` frame, or the client closing)
// and a failed REST call. Both carry the server's snake_case `code` (SPEC section 3).

export class ChatError extends Error {
  /**
   * @param {string} code e.g. `validation`, `forbidden`, `rate_limited`, or `closed` when the
   *   client was closed before the server answered
   * @param {string} message
   * @param {{retryAfterMs?: number, frame?: object}} [extra]
   */
  constructor(code, message, { retryAfterMs, frame } = {}) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
    this.retryAfterMs = retryAfterMs;
    this.frame = frame;
  }
}

export class HttpError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {{retryAfterMs?: number, body?: unknown}} [extra]
   */
  constructor(status, code, message, { retryAfterMs, body } = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
    this.body = body;
  }
}
