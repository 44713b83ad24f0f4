// ui.js: everything the page draws: status line, online users, rooms, the "To" list, the message log
// and the echo log. Nodes are built with createElement/textContent only (never innerHTML), so names
// and messages from the network always show as text. No sockets here; main.js calls these functions.

const $ = (id) => document.getElementById(id);
const MAX_LOG = 400;            // oldest entries are dropped past this
const pendingEntries = new Map(); // command id -> log entry waiting for its ack or error

/** A DOM element: attrs are properties, or attributes when they contain a dash (data-*, aria-*);
 *  children are nodes or strings (strings become text nodes). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.includes('-')) node.setAttribute(key, value === true ? '' : String(value));
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** A message's data as text: a string as is, {text: "..."} as its text, anything else as JSON. */
export function formatData(data) {
  if (typeof data === 'string') return data;
  if (data && typeof data === 'object' && !Array.isArray(data) && typeof data.text === 'string') return data.text;
  return JSON.stringify(data);
}

function clock() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return h('time', { dateTime: now.toISOString(), className: 'time' },
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`);
}

function plural(n, word) { return `${n} ${word}${n === 1 ? '' : 's'}`; }

// ---- connection -------------------------------------------------------------------------------

/** Shows a readyState name (CONNECTING, OPEN, CLOSING, CLOSED) and a line of detail beside it. */
export function showStatus(state, detail = '') {
  const status = $('status');
  status.textContent = state;
  status.dataset.state = state;
  $('status-detail').textContent = detail;
  document.body.dataset.state = state;
}

export function showIdentity(user) {
  const who = $('whoami');
  who.replaceChildren(...(user ? ['You are ', h('strong', { 'data-testid': 'me' }, user)] : []));
}

/** Shows the name field (mode 'open') or the token field (mode 'token'), as GET /auth said. */
export function showAuthMode(mode) {
  for (const el of document.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== mode;
}

/** Enables the controls that make sense: `active` = connected or trying to be. */
export function showControls({ active, open }) {
  $('name').disabled = active;
  $('token').disabled = active;
  $('connect').disabled = active;
  $('disconnect').disabled = !active;
  for (const id of ['room-name', 'join-room']) $(id).disabled = !open;
  document.body.classList.toggle('is-open', open);
}

// ---- users, rooms, targets --------------------------------------------------------------------

/** The online list: other users are buttons (click = message them), you are plain text. */
export function showUsers(users, me, onPick) {
  $('user-count').textContent = users.length ? `(${users.length})` : '';
  $('users').replaceChildren(...users.map((user) => (user === me
    ? h('li', { className: 'user me', 'data-user': user }, h('span', {}, user), h('span', { className: 'you' }, ' (you)'))
    : h('li', { className: 'user', 'data-user': user },
        h('button', { type: 'button', className: 'user-pick', 'aria-label': `Message ${user}`,
          onclick: () => onPick(user) }, user)))));
}

/** The joined rooms: click the name to send to the room, or leave it. */
export function showRooms(rooms, onPick, onLeave) {
  $('rooms').replaceChildren(...rooms.map((room) => h('li', { className: 'room', 'data-room': room },
    h('button', { type: 'button', className: 'room-pick', 'aria-label': `Send to room ${room}`,
      onclick: () => onPick(room) }, `#${room}`),
    h('button', { type: 'button', className: 'room-leave', 'aria-label': `Leave room ${room}`,
      onclick: () => onLeave(room) }, 'Leave'))));
}

/** Target values in the "To" list: 'all', 'user:NAME' or 'room:NAME'. */
export function readTarget() {
  const value = $('to').value || 'all';
  if (value.startsWith('user:')) return { kind: 'user', name: value.slice(5) };
  if (value.startsWith('room:')) return { kind: 'room', name: value.slice(5) };
  return { kind: 'all' };
}

/** Rebuilds the "To" list, keeping the current choice; a chosen user who went offline stays,
 *  marked offline, until another target is picked (sending then shows the server's error). */
export function showTargets(users, rooms, me, choose) {
  const select = $('to');
  const want = choose ?? select.value ?? 'all';
  const others = users.filter((u) => u !== me);
  const wantUser = want.startsWith('user:') ? want.slice(5) : null;
  const userOptions = others.map((u) => h('option', { value: `user:${u}` }, u));
  if (wantUser && !others.includes(wantUser)) {
    userOptions.push(h('option', { value: want }, `${wantUser} (offline)`));
  }
  const groups = [h('option', { value: 'all' }, 'Everyone (broadcast)')];
  if (userOptions.length) groups.push(h('optgroup', { label: 'People' }, ...userOptions));
  if (rooms.length) groups.push(h('optgroup', { label: 'Rooms' }, ...rooms.map((r) => h('option', { value: `room:${r}` }, `#${r}`))));
  select.replaceChildren(...groups);
  select.value = [...select.options].some((o) => o.value === want) ? want : 'all';
}

// ---- message log ------------------------------------------------------------------------------

function append(list, entry) {
  const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  list.append(entry);
  while (list.childElementCount > MAX_LOG) list.firstElementChild.remove();
  if (stick) list.scrollTop = list.scrollHeight;
}

function where(target) {
  if (target.kind === 'room') return `#${target.name}`;
  if (target.kind === 'user') return target.name;
  return 'everyone';
}

function messageEntry(kind, from, to, text) {
  return h('li', { className: `entry msg ${kind}`, 'data-kind': kind, 'data-testid': 'entry' },
    h('div', { className: 'meta' },
      h('span', { className: 'from', 'data-testid': 'from' }, from),
      h('span', { className: 'arrow', 'aria-hidden': 'true' }, ' → '),
      h('span', { className: 'visually-hidden' }, ' to '),
      h('span', { className: 'to', 'data-testid': 'to' }, to),
      ' ', clock()),
    h('p', { className: 'text', 'data-testid': 'text' }, text));
}

/** Our own message, shown at once as "sending…"; its ack or error fills in the outcome later. */
export function logOwn(id, target, text) {
  const entry = messageEntry('own', 'you', where(target), text);
  entry.dataset.id = id;
  entry.append(h('p', { className: 'delivery', 'data-testid': 'delivery', 'data-state': 'pending' }, 'sending…'));
  pendingEntries.set(id, entry);
  append($('log'), entry);
}

export function logIncoming(msg, me) {
  const to = msg.room !== undefined ? `#${msg.room}`
    : msg.to !== undefined ? (msg.to === me ? 'you' : String(msg.to))
    : 'everyone';
  append($('log'), messageEntry('in', String(msg.from), to, formatData(msg.data)));
}

/** An ack for command `id`: true if it belonged to a message in the log. */
export function logAck(id, delivered) {
  const entry = pendingEntries.get(id);
  if (!entry) return false;
  pendingEntries.delete(id);
  const line = entry.querySelector('.delivery');
  line.dataset.state = 'delivered';
  line.dataset.delivered = String(delivered);
  line.textContent = `✓ delivered to ${plural(delivered, 'connection')}`;
  return true;
}

function errorLine(code, message) {
  return [h('code', { className: 'code', 'data-testid': 'error-code' }, code), ' ', message];
}

/** A server error: shown on the message it answers when there is one, else as its own log line. */
export function logError(id, code, message) {
  const entry = id !== undefined ? pendingEntries.get(id) : undefined;
  if (entry) {
    pendingEntries.delete(id);
    const line = entry.querySelector('.delivery');
    line.dataset.state = 'error';
    line.replaceChildren('✗ ', ...errorLine(code, message));
    entry.classList.add('failed');
    return;
  }
  append($('log'), h('li', { className: 'entry error', 'data-kind': 'error', 'data-testid': 'entry', role: 'alert' },
    clock(), ' ', ...errorLine(code, message)));
}

/** A message whose outcome will never be known (the connection closed first). */
export function logUnconfirmed(id) {
  const entry = pendingEntries.get(id);
  if (!entry) return;
  pendingEntries.delete(id);
  const line = entry.querySelector('.delivery');
  line.dataset.state = 'unknown';
  line.textContent = 'not confirmed: the connection closed';
}

/** Joins, leaves, (re)connects: grey lines. */
export function logSystem(text) {
  append($('log'), h('li', { className: 'entry system', 'data-kind': 'system', 'data-testid': 'entry' },
    clock(), ' ', text));
}

// ---- echo -------------------------------------------------------------------------------------

export function showEcho(state, protocol) {
  const status = $('echo-status');
  status.textContent = state;
  status.dataset.state = state;
  $('echo-detail').textContent = state === 'OPEN' ? `subprotocol: ${protocol || '(none)'}` : '';
  const open = state === 'OPEN';
  const idle = state === 'CLOSED';
  const toggle = $('echo-toggle');
  toggle.textContent = idle ? 'Start echo' : 'Stop echo';
  toggle.setAttribute('aria-pressed', String(!idle));
  $('echo-input').disabled = !open;
  $('echo-send').disabled = !open;
}

/** A line in the echo log; kind is 'sent', 'back' (what the server returned) or 'closed'. */
export function logEcho(kind, text) {
  const label = { sent: 'sent', back: 'came back', closed: '' }[kind];
  append($('echo-log'), h('li', { className: `entry echo ${kind}`, 'data-kind': kind, 'data-testid': 'echo-entry' },
    label && h('span', { className: 'label' }, label), label && ' ',
    h('span', { className: 'text', 'data-testid': 'text' }, text)));
}
