// Waiting in tests: a sleep and a poll with a deadline.

/** Resolves after `ms`. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every few milliseconds until it holds; throws after `ms`. */
export async function until(cond, ms = 2000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}
