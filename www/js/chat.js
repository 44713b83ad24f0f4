// chat.js: the demo page's connection, the switchboard client library (clients/js, served here as
// switchboard-client.js) seen through the events the page draws. The library reconnects, rejoins and
// recovers; this file names its states as the page shows them and keeps each command's id, so the
// log can mark a line delivered, failed or unconfirmed. Events:
//   state     {state}                      CONNECTING, OPEN or CLOSED
//   welcome   {user, users, listed, reconnected}  the server greeted us (again, after a reconnect);
//                                          listed: it sent everyone online (--presence global)
//   presence  {event, user, room?}         someone's first connection opened / last one closed, or
//                                          (room set, --presence rooms) entered / left that room
//   members   {room, members}              a room's users, from a join's or a rejoin's ack (--presence rooms)
//   message   {from, to?, room?, data}     a delivery, once, in order per stream, across reconnects
//   ack       {id, delivered, command}     a command of ours succeeded
//   failed    {id?, code, message, command?}  the server answered a command with an error
//   closed    {code, reason, retrying, pending}  the socket closed (pending: commands never answered)
//   retry     {attempt, delay}             a reconnect is scheduled in `delay` ms
//   rejoined  {room}                       a room was joined again after a reconnect
//   lost      {stream, room?}              messages sent while we were away could not be recovered
//   refused   {message}                    the server refused our token (hello); we stop trying
import { Switchboard } from './switchboard-client.js';

export const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const STATE_NAMES = { connecting: 'CONNECTING', connected: 'OPEN', disconnected: 'CLOSED', closed: 'CLOSED' };

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

/** The WebSocket URL on the server that served this page. */
export function socketUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
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

// Closes after which reconnecting with the same (pasted) token cannot help.
const FINAL_CLOSES = new Set([4401, 4408]);

export class ChatClient extends EventTarget {
  #sb = null;
  #user = '';
  #welcomed = false;        // the current library instance was greeted once (so a welcome is a reconnect)
  #nextId = 1;
  #pending = new Map();     // command id -> the command, until its ack or error
  #rooms = new Set();       // rooms joined (acked); the library joins them again after a reconnect
  #minDelay;
  #maxDelay;

  constructor({ minDelay = 1000, maxDelay = 15000 } = {}) {
    super();
    this.#minDelay = minDelay;
    this.#maxDelay = maxDelay;
  }

  get state() { return this.#sb ? STATE_NAMES[this.#sb.state] : 'CLOSED'; }
  get user() { return this.#user; }
  get rooms() { return [...this.#rooms].sort(); }
  /** True while the page wants to be connected (connected, connecting or waiting to retry). */
  get active() { return Boolean(this.#sb) && this.#sb.state !== 'closed'; }

  /** Connects as `user`, or, given `token`, as whoever the token names (the welcome says who). */
  connect(user, { token = '' } = {}) {
    const problem = token ? (token.trim() ? '' : 'Paste a token.') : nameProblem(user);
    if (problem) throw new Error(problem);
    this.#sb?.close();
    this.#user = token ? '' : user;
    this.#rooms.clear();
    this.#welcomed = false;
    const pasted = token.trim();
    const sb = new Switchboard(socketUrl(), {
      ...(pasted ? { token: async () => pasted } : { user }), minDelay: this.#minDelay, maxDelay: this.#maxDelay,
    });
    this.#sb = sb;
    this.#listen(sb);
    sb.connect().catch(() => {});   // closed before a welcome: the page already knows
  }

  disconnect() {
    this.#sb?.close();
    this.#rooms.clear();
  }

  send(to, data) { return this.#command({ type: 'send', to, data }, (sb) => sb.send(to, data)); }
  broadcast(data) { return this.#command({ type: 'broadcast', data }, (sb) => sb.broadcast(data)); }
  publish(room, data) { return this.#command({ type: 'publish', room, data }, (sb) => sb.publish(room, data)); }
  join(room) { return this.#command({ type: 'join', room }, (sb) => sb.join(room)); }
  leave(room) { return this.#command({ type: 'leave', room }, (sb) => sb.leave(room)); }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  #listen(sb) {
    const mine = (fn) => (value) => { if (this.#sb === sb) fn(value); };
    sb.on('state', mine(() => this.#emit('state', { state: this.state })));
    sb.on('welcome', mine((msg) => {
      this.#user = String(msg.user);
      const listed = Array.isArray(msg.users);
      this.#emit('welcome', { user: this.#user, users: listed ? msg.users : [], listed, reconnected: this.#welcomed });
      this.#welcomed = true;
    }));
    sb.on('presence', mine((p) => this.#emit('presence', p)));
    sb.on('members', mine((m) => this.#emit('members', m)));
    sb.on('message', mine((m) => this.#emit('message', m)));
    sb.on('retry', mine((r) => this.#emit('retry', r)));
    sb.on('recovery', mine((r) => {
      if (r.stream === 'room') this.#emit('rejoined', { room: r.room });
      if (!r.recovered) this.#emit('lost', { stream: r.stream, room: r.room });
    }));
    sb.on('error', mine((e) => {
      if (e.code !== 'unauthorized' || this.state === 'OPEN') return;
      this.#emit('refused', { message: e.message });   // our token was refused: trying again cannot help
      this.disconnect();
    }));
    sb.on('closed', mine(({ code, reason }) => {
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      if (FINAL_CLOSES.has(code)) sb.close();
      this.#emit('closed', { code, reason, retrying: sb.state !== 'closed', pending });
      if (sb.state === 'closed') this.#rooms.clear();
    }));
  }

  #command(cmd, call) {
    if (this.state !== 'OPEN') throw new Error('Not connected.');
    const id = `c${this.#nextId++}`;
    const command = { ...cmd, id };
    this.#pending.set(id, command);
    call(this.#sb).then((ack) => {
      if (!this.#pending.delete(id)) return;
      if (cmd.type === 'join') this.#rooms.add(cmd.room);
      if (cmd.type === 'leave') this.#rooms.delete(cmd.room);
      this.#emit('ack', { id, delivered: ack.delivered, command });
    }, (err) => {
      if (!this.#pending.delete(id)) return;   // lost with its connection: 'closed' listed it
      this.#emit('failed', { id, code: String(err.code), message: String(err.message ?? ''), command });
    });
    return id;
  }
}
