// The web client: sign-in, channels, direct messages, history and live chat, built on the
// JavaScript client library (clients/js, served by the api-server at /js/chat-client/).

import { connect, Rest } from '/js/chat-client/index.js';

const $ = (id) => document.getElementById(id);
const QUICK_EMOJI = ['👍', '🎉', '❤️'];
const TYPING_SHOWN_MS = 4000;
const TYPING_EVERY_MS = 2500;
const PAGE = 50;

/** Everything the page knows; rendered by the functions below. */
const S = {
  rest: new Rest(),
  chat: null,
  me: null,
  /** id -> MyChannel (`last_seq`, `last_read_seq`, `unread`, `mentions`). */
  channels: new Map(),
  /** Public channels the user is not in. */
  browse: [],
  /** id -> {id, username, online}. */
  users: new Map(),
  current: null,
  /** channel id -> {msgs: Map seq -> message, next: cursor of older history or null}. */
  logs: new Map(),
  /** channel id -> Map user id -> {name, until}. */
  typing: new Map(),
  /** channel id -> Map user id -> the seq they have read. */
  reads: new Map(),
  /** Sends not yet acked: client id -> {channel_id, content, failed}. */
  pending: new Map(),
  /** The open thread: {channelId, rootSeq, msgs: Map seq -> message}. */
  thread: null,
  editing: null,
  /** In the current channel, the last seq read before it was opened (the "new" divider). */
  divider: null,
  /** Files picked for the main composer's next send. */
  picked: [],
  /** attachment id -> object URL of a picture's thumbnail (fetched with the token), or null
   * while it loads. */
  previews: new Map(),
  lastTyping: 0,
};

// ---- helpers -------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/** A channel's display name: `#name`, or the other user of a direct channel. */
function title(c) {
  if (c.kind !== 'direct') return c.name;
  const other = c.name.split(',').find((n) => n !== S.me?.username);
  return other ?? c.name;
}

function isReply(m) {
  return m.thread_root != null || m.reply_to != null;
}

function fail(e) {
  const msg = e?.message ?? String(e);
  $('typing').textContent = '';
  $('typing').append(el('span', { class: 'err', text: msg }));
}

// ---- sign-in ---------------------------------------------------------------------------------

async function signIn(register) {
  const username = $('user').value.trim();
  const password = $('pass').value;
  $('authErr').textContent = '';
  try {
    if (register) await S.rest.register(username, password);
    const r = await S.rest.login(username, password);
    sessionStorage.setItem('token', r.token);
  } catch (e) {
    $('authErr').textContent = e.message;
    return;
  }
  try {
    await start(sessionStorage.getItem('token'));
  } catch (e) {
    fail(e);
  }
}

function showAuth() {
  $('app').hidden = true;
  $('auth').hidden = false;
  $('user').focus();
}

function logout() {
  sessionStorage.removeItem('token');
  S.chat?.close();
  location.reload();
}

async function start(token) {
  S.rest.token = token;
  try {
    S.me = await S.rest.me();
  } catch {
    sessionStorage.removeItem('token');
    showAuth();
    return;
  }
  $('auth').hidden = true;
  $('app').hidden = false;
  $('me').textContent = S.me.username;
  const [mine] = await Promise.all([S.rest.myChannels(), refreshBrowse(), refreshUsers()]);
  for (const c of mine) S.channels.set(c.id, c);
  renderChannels();
  // Before the first channel is shown, so its read marker is written (at the first `ready`).
  openSocket(token);
  const first = [...S.channels.values()].find((c) => c.kind !== 'direct') ?? S.channels.values().next().value;
  if (first) await select(first.id);
  else renderLog();
}

// ---- the socket ------------------------------------------------------------------------------

function openSocket(token) {
  const chat = connect(location.origin, token);
  S.chat = chat;
  chat.on('state', (state) => showState(state));
  chat.on('ready', (f) => {
    showState('ready', f.edge);
    // Unread counts as the server has them now (what came while away is replayed by resume).
    for (const c of f.channels) {
      const known = S.channels.get(c.id);
      if (!known) S.channels.set(c.id, c);
    }
    renderChannels();
  });
  chat.on('message', onMessage);
  chat.on('event', onEvent);
  chat.on('typing', onTyping);
  chat.on('read', (f) => {
    if (f.user_id === S.me.id) return;
    if (!S.reads.has(f.channel_id)) S.reads.set(f.channel_id, new Map());
    S.reads.get(f.channel_id).set(f.user_id, f.seq);
    if (f.channel_id === S.current) renderLog();
  });
  chat.on('presence', (f) => {
    const u = S.users.get(f.user_id);
    if (!u) return void refreshUsers().then(renderPeople, fail);
    u.online = f.status === 'online';
    renderPeople();
  });
  chat.on('mention', (f) => {
    const c = S.channels.get(f.channel_id);
    if (c && !(f.channel_id === S.current && document.visibilityState === 'visible')) {
      c.mentions = (c.mentions ?? 0) + 1;
      renderChannels();
    }
  });
  chat.on('member_joined', (f) => {
    if (!S.users.has(f.user_id)) refreshUsers().then(renderPeople, fail);
  });
  chat.on('channel_added', (f) => {
    if (!S.channels.has(f.channel.id)) S.channels.set(f.channel.id, f.channel);
    refreshBrowse().then(renderChannels, fail);
  });
  chat.on('channel_removed', (f) => {
    S.channels.delete(f.channel_id);
    S.logs.delete(f.channel_id);
    if (S.current === f.channel_id) {
      S.current = null;
      renderLog();
    }
    refreshBrowse().then(renderChannels, fail);
  });
  chat.on('auth', () => {
    sessionStorage.removeItem('token');
    showAuth();
    $('authErr').textContent = 'Your session has ended: log in again.';
  });
}

function showState(state, edge) {
  const conn = $('conn');
  conn.dataset.state = state;
  conn.textContent =
    state === 'ready'
      ? `Online${edge ? ` · ${edge}` : ''}`
      : state === 'reconnecting'
        ? 'Reconnecting…'
        : state === 'connecting'
          ? 'Connecting…'
          : 'Offline';
  $('banner').hidden = state !== 'reconnecting';
}

// ---- live frames -----------------------------------------------------------------------------

function onMessage(m) {
  const c = S.channels.get(m.channel_id);
  if (c) c.last_seq = Math.max(c.last_seq, m.seq);
  S.logs.get(m.channel_id)?.msgs.set(m.seq, m);
  if (S.thread && S.thread.channelId === m.channel_id && (m.thread_root ?? m.reply_to) === S.thread.rootSeq) {
    S.thread.msgs.set(m.seq, m);
    renderThread();
  }
  S.typing.get(m.channel_id)?.delete(m.sender_id);
  const looking = m.channel_id === S.current && document.visibilityState === 'visible';
  if (c && !looking && m.sender_id !== S.me.id) c.unread = (c.unread ?? 0) + 1;
  if (m.channel_id === S.current) {
    renderLog();
    renderTyping();
    if (looking) markRead(c);
  }
  renderChannels();
}

/** Applies a change (edit, delete, reaction, thread counters) to the message it names. */
function onEvent(e) {
  const c = S.channels.get(e.channel_id);
  if (c) c.last_seq = Math.max(c.last_seq, e.seq);
  const targets = [S.logs.get(e.channel_id)?.msgs.get(e.message_seq)];
  if (S.thread?.channelId === e.channel_id) targets.push(S.thread.msgs.get(e.message_seq), S.thread.root);
  for (const m of new Set(targets.filter(Boolean))) applyEvent(m, e);
  if (e.channel_id === S.current) {
    renderLog();
    if (c && document.visibilityState === 'visible') markRead(c);
  }
  if (S.thread?.channelId === e.channel_id) renderThread();
}

function applyEvent(m, e) {
  if (m.id !== e.message_id) return;
  switch (e.kind) {
    case 'message_edited':
      m.content = e.content;
      m.edited_at = e.edited_at;
      break;
    case 'message_deleted':
      m.deleted = true;
      m.content = '';
      m.reactions = [];
      break;
    case 'reaction_added':
    case 'reaction_removed': {
      const list = (m.reactions ??= []);
      let r = list.find((x) => x.emoji === e.emoji);
      if (!r) list.push((r = { emoji: e.emoji, count: 0, me: false }));
      r.count = e.count;
      if (e.user_id === S.me.id) r.me = e.kind === 'reaction_added';
      m.reactions = list.filter((x) => x.count > 0);
      break;
    }
    case 'thread_updated':
      m.reply_count = e.reply_count;
      m.last_reply_at = e.last_reply_at;
      break;
  }
}

function onTyping(f) {
  if (f.user_id === S.me.id) return;
  if (!S.typing.has(f.channel_id)) S.typing.set(f.channel_id, new Map());
  S.typing.get(f.channel_id).set(f.user_id, { name: f.username, until: Date.now() + TYPING_SHOWN_MS });
  if (f.channel_id === S.current) renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

function markRead(c) {
  if (!c || !S.chat) return;
  const seq = Math.max(S.chat.lastSeq(c.id) ?? 0, c.last_seq);
  const changed = c.unread || c.mentions;
  c.unread = 0;
  c.mentions = 0;
  if (seq > c.last_read_seq) {
    c.last_read_seq = seq;
    S.chat.markRead(c.id, seq);
  }
  if (changed) renderChannels();
}

// ---- channels and people -----------------------------------------------------------------------

async function refreshBrowse() {
  const r = await S.rest.channels({ limit: 200 });
  S.browse = r.channels;
}

async function refreshUsers() {
  const r = await S.rest.users({ limit: 200 });
  S.users = new Map(r.users.map((u) => [u.id, u]));
}

function channelItem(c) {
  const current = c.id === S.current;
  const unread = !current && c.unread > 0;
  const label = `${c.kind === 'direct' ? 'Direct messages with' : 'Channel'} ${title(c)}` +
    (unread ? `, ${c.unread} unread` : '') + (!current && c.mentions > 0 ? `, ${c.mentions} mentions` : '');
  const user = c.kind === 'direct' ? [...S.users.values()].find((u) => u.username === title(c)) : null;
  return el('li', { class: unread ? 'unread' : '' },
    el('button', { type: 'button', 'aria-current': current ? 'true' : null, 'aria-label': label, 'data-channel': c.id, onclick: () => select(c.id) },
      c.kind === 'direct' ? el('span', { class: `dot${user?.online ? ' on' : ''}`, 'aria-hidden': 'true' }) : el('span', { 'aria-hidden': 'true', text: '#' }),
      el('span', { class: 'name', text: title(c) }),
      !current && c.mentions > 0 ? el('span', { class: 'badge mention', text: `@${c.mentions}`, 'aria-hidden': 'true' }) : null,
      unread ? el('span', { class: 'badge unread-count', text: String(c.unread), 'aria-hidden': 'true' }) : null));
}

function renderChannels() {
  const all = [...S.channels.values()];
  const groups = all.filter((c) => c.kind !== 'direct');
  const dms = all.filter((c) => c.kind === 'direct');
  $('channels').replaceChildren(...(groups.length ? groups.map(channelItem) : [el('li', { class: 'empty', text: 'No channels yet' })]));
  $('dms').replaceChildren(...(dms.length ? dms.map(channelItem) : [el('li', { class: 'empty', text: 'Pick someone below' })]));
  const browse = S.browse.filter((c) => !S.channels.has(c.id));
  $('browse').replaceChildren(...(browse.length
    ? browse.map((c) => el('li', {},
      el('span', { class: 'name empty', text: `# ${c.name}` }),
      el('button', { type: 'button', class: 'join', 'aria-label': `Join ${c.name}`, onclick: () => join(c.id) }, 'Join')))
    : [el('li', { class: 'empty', text: 'Nothing else to join' })]));
  const c = S.channels.get(S.current);
  $('title').textContent = c ? (c.kind === 'direct' ? `@ ${title(c)}` : `# ${c.name}`) : 'Pick or create a channel';
  $('leave').hidden = !c || c.kind === 'direct';
  $('text').disabled = $('send').disabled = $('attach').disabled = !c;
  renderPeople();
}

function renderPeople() {
  const people = [...S.users.values()].filter((u) => u.id !== S.me?.id);
  $('people').replaceChildren(...(people.length
    ? people.map((u) => el('li', {},
      el('button', { type: 'button', 'aria-label': `Message ${u.username} (${u.online ? 'online' : 'offline'})`, onclick: () => openDm(u.id) },
        el('span', { class: `dot${u.online ? ' on' : ''}`, 'aria-hidden': 'true' }),
        el('span', { class: 'name', text: u.username }))))
    : [el('li', { class: 'empty', text: 'Nobody else yet' })]));
}

async function join(id) {
  try {
    const c = await S.rest.join(id);
    // Its history is all new to the user: no "New" divider above all of it.
    S.channels.set(c.id, { ...c, unread: 0, mentions: 0 });
    await select(c.id);
  } catch (e) {
    fail(e);
  }
}

async function leave() {
  const id = S.current;
  if (!id) return;
  try {
    await S.rest.leave(id);
    S.channels.delete(id);
    S.logs.delete(id);
    S.current = null;
    await refreshBrowse();
    renderChannels();
    renderLog();
  } catch (e) {
    fail(e);
  }
}

async function openDm(userId) {
  try {
    const ch = await S.rest.dm(userId);
    if (!S.channels.has(ch.id)) {
      S.channels.set(ch.id, { ...ch, last_read_seq: ch.last_seq, unread: 0, mentions: 0 });
    }
    await select(ch.id);
    closeNav();
  } catch (e) {
    fail(e);
  }
}

async function createChannel(ev) {
  ev.preventDefault();
  const name = $('chName').value.trim();
  if (!name) return;
  try {
    const ch = await S.rest.createChannel(name);
    $('chName').value = '';
    if (!S.channels.has(ch.id)) S.channels.set(ch.id, { ...ch, last_read_seq: 0, unread: 0, mentions: 0 });
    await select(ch.id);
  } catch (e) {
    fail(e);
  }
}

// ---- the message list --------------------------------------------------------------------------

async function select(id) {
  const c = S.channels.get(id);
  if (!c) return;
  S.current = id;
  S.editing = null;
  S.divider = c.unread > 0 ? c.last_read_seq : null;
  closeNav();
  renderChannels();
  if (!S.logs.has(id)) {
    const log = { msgs: new Map(), next: null };
    S.logs.set(id, log);
    try {
      const page = await S.rest.history(id, { limit: PAGE });
      for (const m of page.messages) if (!log.msgs.has(m.seq)) log.msgs.set(m.seq, m);
      log.next = page.next;
    } catch (e) {
      S.logs.delete(id);
      fail(e);
      return;
    }
  }
  if (S.current !== id) return;
  renderLog({ toBottom: true });
  renderTyping();
  markRead(c);
  $('text').focus();
}

async function loadOlder() {
  const id = S.current;
  const log = S.logs.get(id);
  if (!log || log.next == null || log.loading) return;
  log.loading = true;
  try {
    const page = await S.rest.history(id, { before: log.next, limit: PAGE });
    for (const m of page.messages) if (!log.msgs.has(m.seq)) log.msgs.set(m.seq, m);
    log.next = page.next;
    if (S.current === id) renderLog({ keepTop: true });
  } catch (e) {
    fail(e);
  } finally {
    log.loading = false;
  }
}

function messageItem(m, { inThread = false } = {}) {
  const mine = m.sender_id === S.me.id;
  const when = new Date(m.created_at);
  const body = S.editing === m.id
    ? el('form', { class: 'edit-box', onsubmit: (ev) => { ev.preventDefault(); saveEdit(m); } },
      el('textarea', { rows: 1, 'aria-label': 'Message text', class: 'edit-text', onkeydown: (ev) => editKeys(ev, m) }, m.content),
      el('button', { type: 'submit', class: 'primary' }, 'Save'),
      el('button', { type: 'button', onclick: () => { S.editing = null; rerender(); } }, 'Cancel'))
    : el('div', { class: 'body' }, ...(m.deleted ? ['This message was deleted.'] : withMentions(m.content)));
  const reactions = (m.reactions ?? []).filter((r) => r.count > 0);
  const files = m.deleted ? [] : (m.attachments ?? []);
  return el('li', { class: `msg${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`, 'data-id': m.id, 'data-seq': m.seq },
    el('div', { class: 'head' },
      el('span', { class: 'who', text: m.sender }),
      el('time', { class: 'when', datetime: m.created_at, title: when.toLocaleString(), text: when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) }),
      m.edited_at && !m.deleted ? el('span', { class: 'edited', text: '(edited)' }) : null),
    body,
    files.length ? el('ul', { class: 'files', 'aria-label': 'Attachments' }, ...files.map(fileItem)) : null,
    reactions.length
      ? el('div', { class: 'reactions' }, ...reactions.map((r) => el('button', {
        type: 'button', 'aria-pressed': r.me ? 'true' : 'false', 'data-action': 'react', 'data-emoji': r.emoji,
        'aria-label': `${r.emoji} ${r.count}${r.me ? ', yours: remove' : ': add yours'}`,
      }, `${r.emoji} ${r.count}`)))
      : null,
    !inThread && m.reply_count > 0
      ? el('button', { type: 'button', class: 'replies', 'data-action': 'thread' }, `${m.reply_count} ${m.reply_count === 1 ? 'reply' : 'replies'}`)
      : null,
    m.deleted ? null : el('div', { class: 'actions', role: 'group', 'aria-label': `Actions on the message of ${m.sender}` },
      ...QUICK_EMOJI.map((e) => el('button', { type: 'button', 'data-action': 'react', 'data-emoji': e, 'aria-label': `React ${e}` }, e)),
      inThread ? null : el('button', { type: 'button', 'data-action': 'thread', 'aria-label': 'Reply in thread' }, 'Reply'),
      mine ? el('button', { type: 'button', 'data-action': 'edit', 'aria-label': 'Edit message' }, 'Edit') : null,
      mine ? el('button', { type: 'button', 'data-action': 'delete', 'aria-label': 'Delete message' }, 'Delete') : null));
}

function fileItem(a) {
  let img = null;
  if (a.thumbnail_url) {
    const src = S.previews.get(a.id);
    if (src === undefined) loadPreview(a);
    img = src ? el('img', { src, alt: a.name }) : null;
  }
  return el('li', {},
    el('button', { type: 'button', 'data-action': 'download', 'data-att': a.id, 'aria-label': `Download ${a.name} (${size(a.size)})` },
      `\u{1F4CE} ${a.name} (${size(a.size)})`),
    img);
}

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Fetches a picture's thumbnail with the token (a plain `src` would carry none), once. */
async function loadPreview(a) {
  S.previews.set(a.id, null);
  try {
    const bytes = await S.rest.download(a.thumbnail_url);
    S.previews.set(a.id, URL.createObjectURL(new Blob([bytes])));
    rerender();
  } catch (e) {
    fail(e);
  }
}

/** Saves an attachment: fetched with the token, then handed to the browser as a download. */
async function download(a) {
  const bytes = await S.rest.download(a.url);
  const url = URL.createObjectURL(new Blob([bytes], { type: a.content_type }));
  const link = el('a', { href: url, download: a.name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The text with `@name`s of known users highlighted (as text nodes: never HTML). */
function withMentions(text) {
  const out = [];
  const re = /@([A-Za-z0-9_.-]{3,32})/g;
  let at = 0;
  for (let hit; (hit = re.exec(text));) {
    out.push(text.slice(at, hit.index));
    out.push(el('span', { class: 'at', text: hit[0] }));
    at = hit.index + hit[0].length;
  }
  out.push(text.slice(at));
  return out;
}

function rerender() {
  renderLog();
  renderThread();
}

/** Rebuilds the list, keeping the reader's place, the focused control and the scroll. */
function renderLog({ toBottom = false, keepTop = false } = {}) {
  const box = $('log');
  const list = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const focus = focusKey(list);
  const log = S.logs.get(S.current);
  const msgs = log ? [...log.msgs.values()].filter((m) => !isReply(m)).sort((a, b) => a.seq - b.seq) : [];
  const reads = S.reads.get(S.current);
  const items = [];
  let divided = S.divider == null;
  for (const m of msgs) {
    if (!divided && m.seq > S.divider && m.sender_id !== S.me.id) {
      items.push(el('li', { class: 'divider', role: 'separator', text: 'New' }));
      divided = true;
    }
    items.push(messageItem(m));
  }
  // "Seen by": after the last message each other member has read.
  if (reads) {
    for (const [userId, seq] of reads) {
      const upTo = msgs.filter((m) => m.seq <= seq).pop();
      const name = S.users.get(userId)?.username;
      if (!upTo || !name) continue;
      const idx = items.findIndex((li) => li.dataset?.seq === String(upTo.seq));
      if (idx >= 0) items.splice(idx + 1, 0, el('li', { class: 'seen', text: `Seen by ${name}` }));
    }
  }
  for (const [id, p] of S.pending) {
    if (p.channel_id !== S.current || p.reply_to != null) continue;
    items.push(el('li', { class: 'msg pending', 'data-pending': id },
      el('div', { class: 'head' }, el('span', { class: 'who', text: S.me.username }),
        el('span', { class: 'when', text: p.failed ? `not sent: ${p.failed}` : 'sending…' })),
      el('div', { class: 'body', text: p.content })));
  }
  list.replaceChildren(...items);
  $('older').hidden = !log || log.next == null;
  if (!S.current) list.replaceChildren(el('li', { class: 'empty', text: 'Create a channel, join one, or message someone.' }));
  if (toBottom || atBottom) box.scrollTop = box.scrollHeight;
  else if (keepTop) box.scrollTop = box.scrollHeight - fromBottom;
  restoreFocus(list, focus);
}

function focusKey(list) {
  const a = document.activeElement;
  if (!a || !list.contains(a)) return null;
  return { id: a.closest('[data-id]')?.dataset.id, action: a.dataset.action, emoji: a.dataset.emoji, edit: a.classList.contains('edit-text') };
}

function restoreFocus(list, key) {
  if (!key?.id) return;
  const li = [...list.querySelectorAll('[data-id]')].find((x) => x.dataset.id === key.id);
  const target = key.edit
    ? li?.querySelector('.edit-text')
    : [...(li?.querySelectorAll('[data-action]') ?? [])].find((b) => b.dataset.action === key.action && b.dataset.emoji === key.emoji);
  target?.focus();
}

function renderTyping() {
  const now = Date.now();
  const who = [...(S.typing.get(S.current)?.values() ?? [])].filter((t) => t.until > now).map((t) => t.name);
  $('typing').textContent = who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
}

// ---- actions on messages -----------------------------------------------------------------------

function findMessage(channelId, id) {
  const inLog = [...(S.logs.get(channelId)?.msgs.values() ?? [])].find((m) => m.id === id);
  if (inLog) return inLog;
  if (S.thread?.root?.id === id) return S.thread.root;
  return [...(S.thread?.msgs.values() ?? [])].find((m) => m.id === id);
}

async function onAction(ev, channelId) {
  const button = ev.target.closest('[data-action]');
  const li = ev.target.closest('[data-id]');
  if (!button || !li) return;
  const m = findMessage(channelId(), li.dataset.id);
  if (!m) return;
  try {
    switch (button.dataset.action) {
      case 'react': {
        const r = (m.reactions ?? []).find((x) => x.emoji === button.dataset.emoji);
        if (r?.me) await S.chat.unreact(m.channel_id, m.id, button.dataset.emoji);
        else await S.chat.react(m.channel_id, m.id, button.dataset.emoji);
        break;
      }
      case 'thread':
        await openThread(m.channel_id, m.seq);
        break;
      case 'edit':
        S.editing = m.id;
        rerender();
        document.querySelector(`[data-id="${m.id}"] .edit-text`)?.focus();
        break;
      case 'delete':
        await S.chat.delete(m.channel_id, m.id);
        break;
      case 'download': {
        const a = (m.attachments ?? []).find((x) => x.id === button.dataset.att);
        if (a) await download(a);
        break;
      }
    }
  } catch (e) {
    fail(e);
  }
}

function editKeys(ev, m) {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    saveEdit(m);
  } else if (ev.key === 'Escape') {
    S.editing = null;
    rerender();
  }
}

async function saveEdit(m) {
  const box = document.querySelector(`[data-id="${m.id}"] .edit-text`);
  const content = box?.value ?? '';
  S.editing = null;
  if (content.trim() && content !== m.content) {
    try {
      await S.chat.edit(m.channel_id, m.id, content);
    } catch (e) {
      fail(e);
    }
  }
  rerender();
}

/** Sends from a composer; the message shows as pending until the server has stored it. Files
 * picked in the main composer are uploaded first, and the send names them. */
async function send(textarea, replyTo) {
  const files = replyTo == null ? S.picked : [];
  const content = textarea.value.trim() || files.map((f) => f.name).join(', ');
  const channelId = replyTo == null ? S.current : S.thread?.channelId;
  if (!content.trim() || channelId == null || !S.chat) return;
  textarea.value = '';
  if (replyTo == null) {
    S.picked = [];
    renderPicked();
  }
  const clientMsgId = S.chat.newId();
  S.pending.set(clientMsgId, { channel_id: channelId, content, reply_to: replyTo });
  renderLog({ toBottom: true });
  try {
    const attachments = [];
    for (const f of files) attachments.push((await S.rest.uploadAttachment(channelId, f, f.name)).id);
    const m = await S.chat.send(channelId, content, { clientMsgId, replyTo, attachments });
    S.pending.delete(clientMsgId);
    S.logs.get(m.channel_id)?.msgs.set(m.seq, m);
    if (replyTo != null && S.thread?.rootSeq === replyTo) S.thread.msgs.set(m.seq, m);
  } catch (e) {
    const p = S.pending.get(clientMsgId);
    if (p) p.failed = e.message;
  }
  rerender();
}

function renderPicked() {
  $('picked').hidden = S.picked.length === 0;
  $('picked').replaceChildren(...S.picked.map((f, i) => el('li', {}, `${f.name} (${size(f.size)})`,
    el('button', { type: 'button', 'aria-label': `Remove ${f.name}`, onclick: () => { S.picked.splice(i, 1); renderPicked(); } }, '\u2715'))));
}

function composerKeys(ev, replyTo) {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    send(ev.target, replyTo());
  }
}

// ---- threads -----------------------------------------------------------------------------------

async function openThread(channelId, rootSeq) {
  try {
    const r = await S.rest.request('GET', `/api/channels/${channelId}/threads/${rootSeq}?after=0&limit=200`);
    S.thread = { channelId, rootSeq, root: r.root, msgs: new Map(r.messages.map((m) => [m.seq, m])) };
    $('thread').hidden = false;
    renderThread();
    $('threadText').focus();
  } catch (e) {
    fail(e);
  }
}

function renderThread() {
  if (!S.thread) return;
  const list = $('threadMessages');
  const focus = focusKey(list);
  const root = S.logs.get(S.thread.channelId)?.msgs.get(S.thread.rootSeq) ?? S.thread.root;
  const replies = [...S.thread.msgs.values()].sort((a, b) => a.seq - b.seq);
  const rootItem = messageItem(root, { inThread: true });
  rootItem.classList.add('root');
  list.replaceChildren(rootItem, ...replies.map((m) => messageItem(m, { inThread: true })));
  list.scrollTop = list.scrollHeight;
  restoreFocus(list, focus);
}

function closeThread() {
  S.thread = null;
  $('thread').hidden = true;
  $('text').focus();
}

// ---- narrow windows ------------------------------------------------------------------------------

function closeNav() {
  $('app').classList.remove('nav-open');
  $('menu').setAttribute('aria-expanded', 'false');
}

function toggleNav() {
  const open = $('app').classList.toggle('nav-open');
  $('menu').setAttribute('aria-expanded', String(open));
}

// ---- wiring --------------------------------------------------------------------------------------

$('authForm').addEventListener('submit', (ev) => {
  ev.preventDefault();
  signIn(false);
});
$('register').addEventListener('click', () => {
  if ($('authForm').reportValidity()) signIn(true);
});
$('logout').addEventListener('click', logout);
$('newCh').addEventListener('submit', createChannel);
$('leave').addEventListener('click', leave);
$('menu').addEventListener('click', toggleNav);
$('older').addEventListener('click', loadOlder);
$('log').addEventListener('scroll', () => {
  if ($('log').scrollTop < 40) loadOlder();
});
$('messages').addEventListener('click', (ev) => onAction(ev, () => S.current));
$('threadMessages').addEventListener('click', (ev) => onAction(ev, () => S.thread?.channelId));
$('compose').addEventListener('submit', (ev) => {
  ev.preventDefault();
  send($('text'), null);
});
$('text').addEventListener('keydown', (ev) => composerKeys(ev, () => null));
$('attach').addEventListener('click', () => $('file').click());
$('file').addEventListener('change', () => {
  S.picked.push(...$('file').files);
  $('file').value = '';
  renderPicked();
  $('text').focus();
});
$('text').addEventListener('input', () => {
  if (S.current && Date.now() - S.lastTyping > TYPING_EVERY_MS && $('text').value) {
    S.lastTyping = Date.now();
    S.chat?.typing(S.current);
  }
});
$('threadCompose').addEventListener('submit', (ev) => {
  ev.preventDefault();
  send($('threadText'), S.thread?.rootSeq);
});
$('threadText').addEventListener('keydown', (ev) => composerKeys(ev, () => S.thread?.rootSeq));
$('closeThread').addEventListener('click', closeThread);
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && S.thread && !S.editing) closeThread();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markRead(S.channels.get(S.current));
});
window.addEventListener('focus', () => {
  if (S.me) refreshBrowse().then(renderChannels).catch(() => {});
});

// New public channels have no live event: the list is read again now and then.
setInterval(() => {
  if (S.me) refreshBrowse().then(renderChannels).catch(() => {});
}, 20_000);

const saved = sessionStorage.getItem('token');
if (saved) start(saved).catch(fail);
else showAuth();
