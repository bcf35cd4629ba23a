// A scripted stand-in for the browser `WebSocket`, for client tests without a server.

export class FakeSocket {
  /** Every socket made, in order. */
  static made = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** Parsed frames the client wrote. */
    this.sent = [];
    FakeSocket.made.push(this);
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason: '' }));
  }

  // ---- the server's side ----

  accept() {
    this.readyState = 1;
    this.onopen?.({});
  }

  serve(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** A failed handshake as Node 20 reports it: `error`, and no `close`. */
  fail() {
    this.readyState = 3;
    this.onerror?.({ type: 'error' });
  }

  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

/** A `fetch` answering every call with `status`. */
export function fetchAnswering(status) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(status === 200 ? { id: 1 } : { error: { code: 'unauthorized', message: 'no' } }), { status });
  };
  f.calls = calls;
  return f;
}

export { sleep, until } from './wait.js';
