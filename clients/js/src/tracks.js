// Per-channel delivery order: every `message` and `event` (a change to a message, which takes
// a seq of its channel too) reaches the application once, in `seq` order.
// A seq already delivered or already held is dropped; one above the next expected seq is held
// until the server fills the hole (its own gap fill while connected, `resume` after a
// reconnect, SPEC 5.4). Nothing is invented: a hole stays a hole until the server fills it.

/** @typedef {import('../index.d.ts').Message} Message */
/** @typedef {import('../index.d.ts').MyChannel} MyChannel */

export class ChannelTrack {
  /** @param {number} last the highest seq already delivered (or known before the socket) */
  constructor(last) {
    this.last = last;
    /** @type {Map<number, Message>} messages above a hole, by seq */
    this.held = new Map();
  }

  /**
   * Takes one `message`; returns what can be delivered now, in order (possibly nothing).
   * @param {Message} m
   * @returns {Message[]}
   */
  accept(m) {
    if (m.seq <= this.last || this.held.has(m.seq)) return [];
    if (m.seq !== this.last + 1) {
      this.held.set(m.seq, m);
      return [];
    }
    const out = [m];
    this.last = m.seq;
    for (let next; (next = this.held.get(this.last + 1)); ) {
      this.held.delete(next.seq);
      out.push(next);
      this.last = next.seq;
    }
    return out;
  }

  /** True while messages wait above a hole. */
  hasGap() {
    return this.held.size > 0;
  }
}

/** The tracks of every channel of the user, kept across sockets. */
export class Tracks {
  constructor() {
    /** @type {Map<number, ChannelTrack>} */
    this.byChannel = new Map();
    this.started = false;
  }

  /**
   * Applies a `ready` frame's channels. The first `ready` starts each channel at its
   * `last_seq` (older messages are history, paged over REST). A later one returns the
   * `resume` cursors: for each known channel where the server is ahead, the last seq
   * delivered. Channels the user joined meanwhile start at their `last_seq`; channels left
   * meanwhile are dropped.
   * @param {MyChannel[]} channels
   * @returns {Record<string, number>} the `resume` map (empty: nothing to resume)
   */
  onReady(channels) {
    /** @type {Record<string, number>} */
    const resume = {};
    const next = new Map();
    for (const c of channels) {
      const t = this.started ? this.byChannel.get(c.id) : undefined;
      if (t) {
        if (c.last_seq > t.last) resume[c.id] = t.last;
        next.set(c.id, t);
      } else {
        next.set(c.id, new ChannelTrack(c.last_seq));
      }
    }
    this.byChannel = next;
    this.started = true;
    return resume;
  }

  /** `channel_added`: the socket gets every message above `lastSeq`. */
  add(channelId, lastSeq) {
    if (!this.byChannel.has(channelId)) this.byChannel.set(channelId, new ChannelTrack(lastSeq));
  }

  remove(channelId) {
    this.byChannel.delete(channelId);
  }

  /**
   * @param {Message} m
   * @returns {Message[]} the messages to deliver now, in order
   */
  accept(m) {
    let t = this.byChannel.get(m.channel_id);
    if (!t) {
      // Not announced (yet): start where this message starts.
      t = new ChannelTrack(m.seq - 1);
      this.byChannel.set(m.channel_id, t);
    }
    return t.accept(m);
  }

  /** The last seq delivered in `channelId`, or undefined for a channel not tracked. */
  last(channelId) {
    return this.byChannel.get(channelId)?.last;
  }

  /** Cursors of the channels holding messages above a hole. */
  gaps() {
    /** @type {Record<string, number>} */
    const out = {};
    for (const [id, t] of this.byChannel) if (t.hasGap()) out[id] = t.last;
    return out;
  }
}
