// chat-client: a dependency-free ES module client of the chat gateway (SPEC sections 3-5).

export { connect, ChatClient } from './client.js';
export { Rest, endpoints } from './rest.js';
export { ChatError, HttpError } from './errors.js';
export { Backoff } from './backoff.js';
export { ChannelTrack, Tracks } from './tracks.js';
export { ID_FIELD } from './requests.js';
