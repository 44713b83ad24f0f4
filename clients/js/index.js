// switchboard client: one connection to a switchboard server that comes back by itself after a blink
// and recovers what was sent meanwhile (docs/PROTOCOL.md, "Recovery (protocol 2)").
//
// The library speaks protocol 2: every message carries its stream's position (epoch, offset). It keeps
// the last position it handed to the application per stream (its user's, the broadcast, each room it
// joined), and on reconnecting asks the server for everything after it: the server replays it before
// any live message, or says `recovered: false` (then the `recovery` event tells the application to
// refetch). So `message` fires exactly once per message, in order per stream, across reconnects.
// No dependencies: browsers' WebSocket, or any implementation with the same interface in Node (npm `ws`).

const STATES = ['connecting', 'connected', 'disconnected', 'closed'];

/** A command refused by the server (its `error` code), or cut short by a disconnect or close(). */
export class SwitchboardError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'SwitchboardError';
    this.code = code;
  }
}

function tokenExp(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = typeof atob === 'function' ? atob(part) : Buffer.from(part, 'base64').toString('binary');
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

function streamOf(msg) {
  if (msg.room !== undefined) return 'room:' + msg.room;
  if (msg.to !== undefined) return 'user';
  return 'broadcast';
}

export class Switchboard {
  /**
   * @param {string} url  ws:// or wss:// URL of the server's WebSocket endpoint (e.g. ws://host:8080/ws)
   * @param {object} options  { user } on an open server, or { token: async () => jwt } on one with a key;
   *   WebSocket: an implementation when globalThis.WebSocket is missing; minDelay, maxDelay (ms): the
   *   reconnect backoff's bounds
   */
  constructor(url, options = {}) {
    this.url = url;
    this.options = options;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new Error('no WebSocket: pass { WebSocket } (e.g. from the ws package)');
    this.minDelay = options.minDelay ?? 250;
    this.maxDelay = options.maxDelay ?? 10000;
    this.state = 'disconnected';
    this.user = null;
    this.positions = new Map(); // stream -> { epoch, offset }
    this.rooms = new Set();
    this.listeners = new Map();
    this.pending = new Map(); // id -> { resolve, reject, kind }
    this.nextId = 1;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.refreshTimer = null;
    this.waiting = []; // commands issued while not connected: sent after the next welcome
    this.lastUsers = null;
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
  }

  emit(event, value) {
    for (const fn of [...(this.listeners.get(event) || [])]) {
      try {
        fn(value);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    }
  }

  setState(state) {
    if (this.state === state || !STATES.includes(state)) return;
    this.state = state;
    this.emit('state', state);
  }

  /** Opens the connection; resolves with the welcome. Reconnects by itself until close(). */
  connect() {
    if (this.state === 'closed') return Promise.reject(new SwitchboardError('closed'));
    if (!this.connected) {
      this.connected = new Promise((resolve, reject) => {
        this.resolveConnected = resolve;
        this.rejectConnected = reject;
      });
      this.open();
    }
    return this.connected;
  }

  async open() {
    clearTimeout(this.timer);
    this.timer = null;
    this.setState('connecting');
    let token = null;
    if (this.options.token) {
      try {
        token = await this.options.token();
      } catch (e) {
        this.emit('error', e);
        return this.scheduleReconnect();
      }
      if (this.state === 'closed') return;
    }
    const u = new URL(this.url);
    u.searchParams.set('v', '2');
    if (this.options.user && !this.options.token) u.searchParams.set('user', this.options.user);
    const since = this.sinceStreams();
    if (!token) {
      if (since.user) u.searchParams.set('since_user', since.user.epoch + ':' + since.user.offset);
      if (since.broadcast) u.searchParams.set('since_broadcast', since.broadcast.epoch + ':' + since.broadcast.offset);
    }
    let ws;
    try {
      ws = new this.WebSocket(u.toString());
    } catch (e) {
      this.emit('error', e);
      return this.scheduleReconnect();
    }
    this.ws = ws;
    ws.onopen = () => {
      if (token) this.raw({ type: 'hello', token, since });
    };
    ws.onmessage = (e) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(typeof e.data === 'string' ? e.data : String(e.data));
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.emit('closed', { code: e.code, reason: e.reason });
      this.lost();
    };
    ws.onerror = () => {}; // a close follows
  }

  sinceStreams() {
    const since = {};
    for (const key of ['user', 'broadcast']) {
      const p = this.positions.get(key);
      if (p) since[key] = { epoch: p.epoch, offset: p.offset };
    }
    return since;
  }

  lost() {
    clearTimeout(this.refreshTimer);
    for (const [id, p] of this.pending) {
      p.reject(new SwitchboardError('disconnected', 'the connection was lost before the answer'));
      this.pending.delete(id);
    }
    if (this.state === 'closed') return;
    this.setState('disconnected');
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.state === 'closed' || this.timer) return;
    this.setState('disconnected');
    const ceiling = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    this.attempt++;
    const delay = ceiling / 2 + Math.random() * ceiling / 2; // jitter: not all clients at once
    this.emit('retry', { attempt: this.attempt, delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open();
    }, delay);
  }

  handle(msg) {
    switch (msg.type) {
      case 'welcome':
        return this.welcomed(msg);
      case 'message':
        return this.delivered(msg);
      case 'joined':
        return this.startStream('room:' + msg.room, msg, msg.room);
      case 'presence': {
        // room: a room's presence (a server with --presence rooms, the default); without it, a user's
        const p = { event: msg.event, user: msg.user };
        if (msg.room !== undefined) p.room = msg.room;
        return this.emit('presence', p);
      }
      case 'users':
        this.lastUsers = msg.users;
        return;
      case 'ack':
        return this.settle(msg.id, (p) => {
          // a join's members (--presence rooms), for an explicit join and a rejoin after a reconnect alike
          if (p.room !== undefined && Array.isArray(msg.members)) this.emit('members', { room: p.room, members: msg.members });
          p.resolve(p.kind === 'users' ? this.lastUsers : msg);
        });
      case 'error':
        if (msg.id !== undefined && this.pending.has(msg.id))
          return this.settle(msg.id, (p) => p.reject(new SwitchboardError(msg.code, msg.message)));
        return this.emit('error', new SwitchboardError(msg.code, msg.message));
      default:
    }
  }

  settle(id, fn) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    fn(p);
  }

  welcomed(msg) {
    this.user = msg.user;
    this.attempt = 0;
    if (msg.streams) {
      this.startStream('user', msg.streams.user);
      this.startStream('broadcast', msg.streams.broadcast);
    }
    if (msg.exp) this.scheduleRefresh(msg.exp);
    this.setState('connected');
    for (const room of this.rooms) {
      const p = this.positions.get('room:' + room);
      const cmd = { type: 'join', room };
      if (p) cmd.since = { epoch: p.epoch, offset: p.offset };
      this.request(cmd).catch((e) => this.emit('error', e));
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.go();
    this.emit('welcome', msg);
    if (this.resolveConnected) {
      this.resolveConnected(msg);
      this.resolveConnected = this.rejectConnected = null;
    }
  }

  // Where a stream stands after a welcome or joined: if everything after our position is being
  // replayed, we keep our position (the replay moves it); otherwise we start from the server's.
  startStream(key, s, room) {
    if (!s || s.epoch === undefined) return;
    if (s.recovered !== undefined) {
      const event = { stream: key.startsWith('room:') ? 'room' : key, recovered: s.recovered };
      if (room !== undefined) event.room = room;
      this.emit('recovery', event);
    }
    if (s.recovered === true) return;
    if (s.epoch === '') this.positions.delete(key); // unknown (a cluster whose Redis is down): the next message says
    else this.positions.set(key, { epoch: s.epoch, offset: s.offset });
  }

  delivered(msg) {
    if (msg.epoch !== undefined) {
      const key = streamOf(msg);
      const p = this.positions.get(key);
      if (p && p.epoch === msg.epoch && msg.offset <= p.offset) return; // already handed over
      this.positions.set(key, { epoch: msg.epoch, offset: msg.offset });
    }
    const out = { from: msg.from };
    if (msg.to !== undefined) out.to = msg.to;
    if (msg.room !== undefined) out.room = msg.room;
    out.data = msg.data;
    this.emit('message', out);
  }

  scheduleRefresh(exp) {
    clearTimeout(this.refreshTimer);
    if (!this.options.token) return;
    const left = exp * 1000 - Date.now();
    const delay = Math.max(1000, Math.min(left * 0.8, left - 30000));
    this.refreshTimer = setTimeout(async () => {
      try {
        const token = await this.options.token();
        await this.request({ type: 'refresh', token });
        const next = tokenExp(token);
        if (next) this.scheduleRefresh(next);
      } catch (e) {
        this.emit('error', e); // the server closes at exp; the reconnect fetches a new token
      }
    }, delay);
  }

  raw(obj) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(obj));
  }

  // Sends a command with an id; resolves with its ack (users: the list), rejects with its error.
  request(cmd, kind) {
    if (this.state === 'closed') return Promise.reject(new SwitchboardError('closed'));
    return new Promise((resolve, reject) => {
      const go = () => {
        const id = this.nextId++;
        this.pending.set(id, { resolve, reject, kind, room: cmd.type === 'join' ? cmd.room : undefined });
        this.raw({ ...cmd, id });
      };
      if (this.state === 'connected' && this.ws && this.ws.readyState === 1) go();
      else this.waiting.push({ go, reject });
    });
  }

  send(to, data) {
    return this.request({ type: 'send', to, data });
  }

  broadcast(data) {
    return this.request({ type: 'broadcast', data });
  }

  publish(room, data) {
    return this.request({ type: 'publish', room, data });
  }

  async join(room) {
    const p = this.positions.get('room:' + room);
    const cmd = { type: 'join', room };
    if (p) cmd.since = { epoch: p.epoch, offset: p.offset };
    const ack = await this.request(cmd);
    this.rooms.add(room);
    return ack;
  }

  leave(room) {
    this.rooms.delete(room);
    this.positions.delete('room:' + room);
    return this.request({ type: 'leave', room });
  }

  users() {
    return this.request({ type: 'users' }, 'users');
  }

  /** Hear `presence` (without room) when these users come and go (--presence rooms); resolves with
   * the ack, whose `online` lists those of them online now. Not kept across reconnects. */
  watch(users) {
    return this.request({ type: 'watch', users });
  }

  unwatch(users) {
    return this.request({ type: 'unwatch', users });
  }

  /** Ends the connection for good: no more reconnects; pending commands are rejected. */
  close() {
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    this.timer = null;
    this.setState('closed');
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    for (const [, p] of this.pending) p.reject(new SwitchboardError('closed'));
    this.pending.clear();
    for (const w of this.waiting.splice(0)) w.reject(new SwitchboardError('closed'));
    if (this.rejectConnected) this.rejectConnected(new SwitchboardError('closed'));
    this.resolveConnected = this.rejectConnected = null;
  }
}

export default Switchboard;
