// Types of switchboard-client (index.js). The protocol: docs/PROTOCOL.md of switchboard.

/** Any JSON value: what `data` may be. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface SwitchboardOptions {
  /** The user name, on a server without a key (sent as ?user=). */
  user?: string;
  /** Returns a JWT for this user, on a server with a key: called for every (re)connection and before
   * the token's exp, to refresh it. */
  token?: () => Promise<string> | string;
  /** A WebSocket implementation when globalThis.WebSocket is missing (Node < 22: the ws package). */
  WebSocket?: unknown;
  /** Reconnect backoff bounds in milliseconds (defaults 250 and 10000), with jitter. */
  minDelay?: number;
  maxDelay?: number;
}

export interface Message {
  from: string;
  /** Set for a message sent to this user. */
  to?: string;
  /** Set for a message published to a room. */
  room?: string;
  data: Json;
}

export interface Presence {
  event: 'join' | 'leave';
  user: string;
  /** Set when a user entered or left this room (a server with --presence rooms, the default);
   * unset for a user's first connection opening or last one closing (--presence global, or watch). */
  room?: string;
}

/** A room's users (distinct, sorted, you included), from a join's ack with --presence rooms: after
 * join() and after each rejoin following a reconnect. */
export interface Members {
  room: string;
  members: string[];
}

export interface Recovery {
  stream: 'user' | 'broadcast' | 'room';
  room?: string;
  /** false: messages of this stream were lost during the disconnection; refetch them elsewhere. */
  recovered: boolean;
}

export type State = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface Ack {
  type: 'ack';
  id: number;
  delivered: number;
  /** A join's room members, with --presence rooms. */
  members?: string[];
  /** Those of a watch's users online now. */
  online?: string[];
}

export interface Welcome {
  type: 'welcome';
  id: string;
  user: string;
  users?: string[];
  exp?: number;
  streams?: Record<'user' | 'broadcast', { epoch: string; offset: number; recovered?: boolean }>;
}

export interface EventMap {
  message: Message;
  presence: Presence;
  members: Members;
  state: State;
  recovery: Recovery;
  welcome: Welcome;
  closed: { code: number; reason: string };
  retry: { attempt: number; delay: number };
  error: Error;
}

export class SwitchboardError extends Error {
  /** The server's error code (bad_request, not_found, unauthorized, ...), or 'disconnected' or 'closed'. */
  code: string;
  constructor(code: string, message?: string);
}

export class Switchboard {
  constructor(url: string, options?: SwitchboardOptions);
  readonly state: State;
  /** The user name the server gave this connection (after the welcome). */
  readonly user: string | null;
  /** Resolves on the first welcome; reconnects by itself afterwards until close(). */
  connect(): Promise<Welcome>;
  send(to: string | string[], data: Json): Promise<Ack>;
  broadcast(data: Json): Promise<Ack>;
  join(room: string): Promise<Ack>;
  leave(room: string): Promise<Ack>;
  publish(room: string, data: Json): Promise<Ack>;
  users(): Promise<string[]>;
  watch(users: string[]): Promise<Ack>;
  unwatch(users: string[]): Promise<Ack>;
  on<K extends keyof EventMap>(event: K, fn: (value: EventMap[K]) => void): () => void;
  off<K extends keyof EventMap>(event: K, fn: (value: EventMap[K]) => void): void;
  close(): void;
}

export default Switchboard;
