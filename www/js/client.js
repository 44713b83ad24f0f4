// client.js: the connection to the switchboard router, with no DOM in it.
// Opens ws(s)://<this host>/ws?user=NAME (or, on a server that wants tokens, /ws and then
// {"type":"hello","token":...}, since a browser cannot send an Authorization header), speaks docs/PROTOCOL.md (one JSON object per text message;
// every command carries an "id" so its ack or error can be matched to it), and reconnects by itself
// with exponential backoff when the server goes away. It reports what happens as events for the page:
//   state     {state}                      readyState changed: CONNECTING, OPEN, CLOSING or CLOSED
//   welcome   {user, users, listed, reconnected}  the server greeted us (again, after a reconnect);
//                                          listed: it sent everyone online (--presence global)
//   presence  {event, user, room?}         someone's first connection opened / last one closed, or
//                                          (room set, --presence rooms) entered / left that room
//   message   {from, to?, room?, data}     a delivery
//   ack       {id, delivered, members?, command}  a command of ours succeeded (members: a join's,
//                                          --presence rooms)
//   failed    {id?, code, message, command?}  the server answered a command with an error
//   closed    {code, reason, retrying, pending}  the socket closed (pending: commands never answered)
//   retry     {attempt, delay}             a reconnect is scheduled in `delay` ms
//   rejoined  {room}                       a room was joined again after a reconnect
//   refused   {message}                    the server refused our token (hello); we stop trying

export const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];

// User and room names, as PROTOCOL.md defines them.
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Why `name` is not a valid user name, or '' if it is. */
export function nameProblem(name, what = 'name') {
  if (name === '') return `Enter a ${what}.`;
  if (name.length > 64) return `A ${what} has at most 64 characters.`;
  if (!NAME_RE.test(name)) return `A ${what} may only use letters, digits, _ . and -.`;
  if (what === 'name' && name.startsWith('conn-')) return 'Names starting with conn- are reserved.';
  return '';
}

/** The WebSocket URL on the server that served this page: ws(s)://host/ws plus `query`. */
export function socketUrl(query = '') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws${query}`;
}

/** Close codes a person may see, in words. */
export function describeClose(code) {
  const words = {
    1000: 'normal closure', 1001: 'server going away', 1002: 'protocol error',
    1006: 'connection lost', 1007: 'invalid text', 1008: 'policy violation',
    1009: 'message too big', 1011: 'server error',
    4401: 'token expired', 4408: 'authentication timeout',
  };
  return words[code] ? `${code}, ${words[code]}` : String(code);
}

// Closes after which reconnecting with the same token cannot help.
const FINAL_CLOSES = new Set([4401, 4408]);

export class ChatClient extends EventTarget {
  #ws = null;
  #user = '';
  #token = '';              // set: prove who we are with this token (hello), not a name
  #wanted = false;          // true from connect() until disconnect(): keep (re)connecting
  #attempt = 0;             // failed (re)connects in a row
  #timer = 0;
  #reconnecting = false;    // the current socket replaces one that was lost
  #nextId = 1;
  #pending = new Map();     // command id -> the command, until its ack or error
  #rooms = new Set();       // rooms joined (acked), joined again after a reconnect
  #minDelay;
  #maxDelay;

  constructor({ minDelay = 1000, maxDelay = 15000 } = {}) {
    super();
    this.#minDelay = minDelay;
    this.#maxDelay = maxDelay;
  }

  /** readyState of the current socket as a name; CLOSED when there is none. */
  get state() { return READY_STATES[this.#ws ? this.#ws.readyState : 3]; }
  get user() { return this.#user; }
  get rooms() { return [...this.#rooms].sort(); }
  /** True while the page wants to be connected (connected, connecting or waiting to retry). */
  get active() { return this.#wanted; }

  /** Connects as `user`, or, given `token`, as whoever the token names (the welcome says who). */
  connect(user, { token = '' } = {}) {
    const problem = token ? (token.trim() ? '' : 'Paste a token.') : nameProblem(user);
    if (problem) throw new Error(problem);
    this.#user = token ? '' : user;
    this.#token = token.trim();
    this.#wanted = true;
    this.#attempt = 0;
    this.#reconnecting = false;
    this.#rooms.clear();
    clearTimeout(this.#timer);
    this.#open();
  }

  disconnect() {
    this.#wanted = false;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    // Closing a socket that is still CONNECTING makes the browser log an error, so that one is
    // closed as soon as it opens instead (see #open).
    if (ws && ws.readyState === WebSocket.OPEN) ws.close(1000, 'bye');
    this.#rooms.clear();
    this.#emit('state', { state: this.state });
  }

  send(to, data) { return this.#command({ type: 'send', to, data }); }
  broadcast(data) { return this.#command({ type: 'broadcast', data }); }
  publish(room, data) { return this.#command({ type: 'publish', room, data }); }
  join(room) { return this.#command({ type: 'join', room }); }
  leave(room) { return this.#command({ type: 'leave', room }); }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  #open() {
    const ws = new WebSocket(socketUrl(this.#token ? '' : `?user=${encodeURIComponent(this.#user)}`));
    this.#ws = ws;
    this.#emit('state', { state: this.state });
    ws.addEventListener('open', () => {
      if (this.#ws !== ws) return;
      if (!this.#wanted) { ws.close(1000, 'bye'); this.#emit('state', { state: this.state }); return; }
      this.#attempt = 0;
      this.#emit('state', { state: this.state });
      if (this.#token) this.#command({ type: 'hello', token: this.#token });
    });
    ws.addEventListener('message', (ev) => { if (this.#ws === ws) this.#receive(ev.data); });
    // 'error' is always followed by 'close', which handles it.
    ws.addEventListener('close', (ev) => {
      if (this.#ws !== ws) return;
      const pending = [...this.#pending.values()].filter((c) => c.type !== 'hello');
      this.#pending.clear();
      if (FINAL_CLOSES.has(ev.code)) this.#wanted = false;
      this.#emit('state', { state: this.state });
      this.#emit('closed', { code: ev.code, reason: ev.reason, retrying: this.#wanted, pending });
      if (this.#wanted) this.#scheduleRetry();
      else this.#rooms.clear();
    });
  }

  #scheduleRetry() {
    this.#attempt += 1;
    this.#reconnecting = true;
    const base = Math.min(this.#maxDelay, this.#minDelay * 2 ** (this.#attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));   // jitter: not all tabs at once
    this.#emit('retry', { attempt: this.#attempt, delay });
    this.#timer = setTimeout(() => { if (this.#wanted) this.#open(); }, delay);
  }

  #command(cmd) {
    if (this.state !== 'OPEN') throw new Error('Not connected.');
    const id = `c${this.#nextId++}`;
    this.#pending.set(id, { ...cmd, id });
    this.#ws.send(JSON.stringify({ ...cmd, id }));
    return id;
  }

  #receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { msg = null; }
    if (!msg || typeof msg !== 'object') {
      this.#emit('failed', { code: 'bad_reply', message: 'the server sent something that is not JSON' });
      return;
    }
    switch (msg.type) {
      case 'welcome': {
        const reconnected = this.#reconnecting;
        this.#reconnecting = false;
        this.#user = String(msg.user);
        const listed = Array.isArray(msg.users);
        this.#emit('welcome', { user: this.#user, users: listed ? msg.users : [], listed, reconnected });
        // The server forgot our rooms with the old connection: join them again.
        for (const room of this.#rooms) {
          const id = this.#command({ type: 'join', room });
          this.#pending.get(id).rejoin = true;
        }
        break;
      }
      case 'presence':
        this.#emit('presence', { event: msg.event, user: String(msg.user), room: msg.room });
        break;
      case 'message':
        this.#emit('message', msg);
        break;
      case 'ack': {
        const command = this.#take(msg.id);
        if (command?.type === 'join') this.#rooms.add(command.room);
        if (command?.type === 'leave') this.#rooms.delete(command.room);
        if (command?.rejoin) this.#emit('rejoined', { room: command.room });
        this.#emit('ack', { id: msg.id, delivered: msg.delivered, members: msg.members, command });
        break;
      }
      case 'error': {
        const command = this.#take(msg.id);
        if (command?.type === 'hello') {   // our token was refused: trying again cannot help
          this.#emit('refused', { message: String(msg.message ?? '') });
          this.disconnect();
          break;
        }
        this.#emit('failed', { id: msg.id, code: String(msg.code), message: String(msg.message ?? ''), command });
        break;
      }
      default:
        break;   // users, pong, and any future type: nothing to show
    }
  }

  #take(id) {
    if (id === undefined || id === null) return undefined;
    const command = this.#pending.get(id);
    this.#pending.delete(id);
    return command;
  }
}
