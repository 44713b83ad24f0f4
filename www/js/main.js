// main.js: the demo page's wiring. Connects the forms and buttons of index.html to the router client
// (chat.js, over the client library) and the echo socket (echo.js), and turns their events into what ui.js draws.
import { ChatClient, describeClose, nameProblem } from './chat.js';
import { EchoSocket } from './echo.js';
import * as ui from './ui.js';

const $ = (id) => document.getElementById(id);
const client = new ChatClient();
const echo = new EchoSocket();

// With --presence rooms (the server's default) the welcome lists nobody: the page joins this room,
// learns who is in it from the join's ack (the library's `members` event, again after each reconnect),
// and follows its presence events. It is not shown as a room.
const PEOPLE_ROOM = 'demo.lobby';

let users = [];          // online users, sorted, from welcome (or PEOPLE_ROOM's members) + presence
let welcomed = false;    // the current connection has been greeted (so a close is a loss, not a failure)
let retryNote = '';      // status detail while waiting to reconnect
let announcedRetry = false;
let authMode = 'open';   // 'token' when GET /auth says the server wants tokens

function randomName() {
  const first = ['brisk', 'calm', 'eager', 'fuzzy', 'jolly', 'lucky', 'mellow', 'nimble', 'plucky', 'quiet', 'sunny', 'witty'];
  const second = ['otter', 'heron', 'badger', 'lynx', 'finch', 'panda', 'gecko', 'koala', 'marten', 'puffin', 'walrus', 'wombat'];
  const pick = (list) => list[Math.floor(Math.random() * list.length)];
  return `${pick(first)}-${pick(second)}-${Math.floor(Math.random() * 90 + 10)}`;
}

// ---- redraw helpers ---------------------------------------------------------------------------

function detailFor(state) {
  if (state === 'CONNECTING') {
    if (announcedRetry) return 'reconnecting…';
    return authMode === 'token' ? 'connecting with your token…' : `connecting as ${client.user}…`;
  }
  if (state === 'OPEN') return welcomed ? '' : 'waiting for welcome…';
  if (state === 'CLOSING') return 'closing…';
  if (client.active) return retryNote;
  return 'not connected';
}

function refreshConnection() {
  const state = client.state;
  ui.showStatus(state, detailFor(state));
  ui.showControls({ active: client.active, open: state === 'OPEN' && welcomed });
  ui.showIdentity(client.active && client.user ? client.user : null);
}

/** The rooms the person joined, without the one behind the people list. */
function shownRooms() { return client.rooms.filter((r) => r !== PEOPLE_ROOM); }

function refreshLists(choose) {
  ui.showUsers(users, client.user, pickUser);
  ui.showRooms(shownRooms(), pickRoom, leaveRoom);
  ui.showTargets(users, shownRooms(), client.user, choose);
}

function pickUser(user) {
  ui.showTargets(users, shownRooms(), client.user, `user:${user}`);
  $('message').focus();
}

function pickRoom(room) {
  ui.showTargets(users, shownRooms(), client.user, `room:${room}`);
  $('message').focus();
}

function leaveRoom(room) {
  try { client.leave(room); } catch (err) { ui.logSystem(err.message); }
}

// ---- router client events ---------------------------------------------------------------------

client.addEventListener('state', refreshConnection);

let greeting = null;     // the welcome's line, held until PEOPLE_ROOM's members are known

function greet(list) {
  users = [...list].sort();
  const others = users.length - 1;
  ui.logSystem(`${greeting.reconnected ? 'Reconnected' : 'Connected'} as ${greeting.user}. ` +
    (others > 0 ? `${others} other${others === 1 ? '' : 's'} online.` : 'Nobody else is online yet.'));
  greeting = null;
  refreshLists();
}

client.addEventListener('welcome', ({ detail }) => {
  welcomed = true;
  announcedRetry = false;
  greeting = { user: detail.user, reconnected: detail.reconnected };
  refreshConnection();
  if (detail.listed) greet(detail.users);
  else if (!client.rooms.includes(PEOPLE_ROOM)) client.join(PEOPLE_ROOM);  // after a reconnect the client joins it again
  else users = [detail.user];
  refreshLists();
});

// PEOPLE_ROOM's members arrived with a join's ack (the first, or the one after a reconnect).
client.addEventListener('members', ({ detail }) => {
  if (detail.room !== PEOPLE_ROOM) return;
  if (greeting) greet(detail.members);
  else users = [...detail.members].sort();
  refreshLists();
});

client.addEventListener('presence', ({ detail }) => {
  if (detail.room !== undefined && detail.room !== PEOPLE_ROOM) return;   // another room's comings and goings
  if (detail.event === 'join' && !users.includes(detail.user)) {
    users = [...users, detail.user].sort();
    ui.logSystem(`${detail.user} joined.`);
  } else if (detail.event === 'leave' && users.includes(detail.user)) {
    users = users.filter((u) => u !== detail.user);
    ui.logSystem(`${detail.user} left.`);
  }
  refreshLists();
});

client.addEventListener('message', ({ detail }) => ui.logIncoming(detail, client.user));

client.addEventListener('ack', ({ detail }) => {
  const { command } = detail;
  if (command?.room === PEOPLE_ROOM) return;   // the people list, not a room the person joined
  if (ui.logAck(detail.id, detail.delivered)) return;
  if (command?.type === 'join' && !command.rejoin) {
    ui.logSystem(`You joined #${command.room}.`);
    refreshLists(`room:${command.room}`);
  } else if (command?.type === 'leave') {
    ui.logSystem(`You left #${command.room}.`);
    refreshLists();
  }
});

client.addEventListener('rejoined', ({ detail }) => {
  if (detail.room === PEOPLE_ROOM) return;   // the ack's members redrew the people list
  ui.logSystem(`Joined #${detail.room} again.`);
  refreshLists();
});

client.addEventListener('lost', ({ detail }) => {
  const what = detail.stream === 'room' ? `in #${detail.room}` : detail.stream === 'user' ? 'to you' : 'to everyone';
  ui.logSystem(`Messages sent ${what} while you were away could not be recovered: some are missing.`);
});

client.addEventListener('refused', ({ detail }) => {
  ui.logSystem(`The server refused your token: ${detail.message}.`);
  $('name-error').textContent = `Token refused: ${detail.message}`;
});

client.addEventListener('failed', ({ detail }) => {
  // PEOPLE_ROOM refused (a token whose rooms claim leaves it out): say hello with nobody listed
  if (detail.command?.room === PEOPLE_ROOM && greeting) greet([client.user]);
  ui.logError(detail.id, detail.code, detail.message);
});

client.addEventListener('closed', ({ detail }) => {
  for (const command of detail.pending) ui.logUnconfirmed(command.id);
  const words = describeClose(detail.code);
  const why = detail.reason && !words.endsWith(detail.reason) ? `${words}: ${detail.reason}` : words;
  if (detail.code === 4401 || detail.code === 4408) $('name-error').textContent = `Disconnected: ${why}. Paste a new token.`;
  if (!detail.retrying) ui.logSystem(`Disconnected (${why}).`);
  else if (welcomed) ui.logSystem(`Connection lost (${why}). Reconnecting by itself…`);
  else if (!announcedRetry) ui.logSystem(`Could not reach the server (${why}). Retrying by itself…`);
  if (detail.retrying) announcedRetry = true;
  welcomed = false;
  users = [];
  refreshConnection();
  refreshLists();
});

client.addEventListener('retry', ({ detail }) => {
  retryNote = `reconnecting in ${(detail.delay / 1000).toFixed(1)} s (attempt ${detail.attempt})`;
  refreshConnection();
});

// ---- forms ------------------------------------------------------------------------------------

$('connect-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (authMode === 'token') {
    const token = $('token').value.trim();
    $('name-error').textContent = token ? '' : 'Paste a token.';
    if (!token) return;
    announcedRetry = false;
    welcomed = false;
    client.connect('', { token });
    return;
  }
  const name = $('name').value.trim();
  const problem = nameProblem(name);
  $('name-error').textContent = problem;
  $('name').setAttribute('aria-invalid', String(Boolean(problem)));
  if (problem) return;
  announcedRetry = false;
  welcomed = false;
  client.connect(name);
});

$('disconnect').addEventListener('click', () => {
  client.disconnect();
  if (client.state === 'CLOSED') {      // nothing to wait for: no 'closed' event will come
    ui.logSystem('Disconnected.');
    users = [];
    welcomed = false;
    refreshLists();
  }
  refreshConnection();
});

$('compose').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('message');
  const text = input.value;
  if (text.trim() === '') return;
  const target = ui.readTarget();
  try {
    const id = target.kind === 'user' ? client.send(target.name, text)
      : target.kind === 'room' ? client.publish(target.name, text)
      : client.broadcast(text);
    ui.logOwn(id, target, text);
    input.value = '';
    $('compose-error').textContent = '';
  } catch (err) {
    $('compose-error').textContent = `${err.message} Connect first, then send.`;
  }
});

$('room-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = $('room-name').value.trim().replace(/^#/, '');
  const problem = nameProblem(room, 'room name');
  $('room-error').textContent = problem;
  if (problem) return;
  try {
    client.join(room);
    $('room-name').value = '';
  } catch (err) {
    $('room-error').textContent = err.message;
  }
});

// ---- echo mode --------------------------------------------------------------------------------

echo.addEventListener('state', () => ui.showEcho(echo.state, echo.protocol));
echo.addEventListener('echoed', ({ detail }) => ui.logEcho('back', detail.data));
echo.addEventListener('closed', ({ detail }) => ui.logEcho('closed', `echo socket closed (${describeClose(detail.code)})`));

$('echo-toggle').addEventListener('click', () => {
  if (echo.state === 'CLOSED') echo.open();
  else echo.close();
});

$('echo-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('echo-input');
  if (input.value === '' || echo.state !== 'OPEN') return;
  echo.send(input.value);
  ui.logEcho('sent', input.value);
  input.value = '';
});

// ---- start ------------------------------------------------------------------------------------

/** 'token' or 'open', from GET /auth; 'open' from a server too old to say. */
async function fetchAuthMode() {
  try {
    const res = await fetch('/auth', { cache: 'no-store' });
    if (!res.ok) return 'open';
    return (await res.json()).auth === 'token' ? 'token' : 'open';
  } catch {
    return 'open';
  }
}

$('name').value = randomName();
refreshConnection();
refreshLists('all');
ui.showEcho(echo.state, echo.protocol);
authMode = await fetchAuthMode();
ui.showAuthMode(authMode);
document.documentElement.dataset.ready = 'true';   // the tests wait for this
