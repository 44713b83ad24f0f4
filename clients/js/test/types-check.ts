// Compiled (never run) by types.test.mjs with tsc --strict: the declarations describe the API as the
// README uses it, and reject what it does not allow.
import Switchboard, { Message, Recovery, State, SwitchboardError } from '../index.js';

async function use(): Promise<void> {
  const sb = new Switchboard('ws://localhost:8080/ws', { user: 'alice' });
  const tok = new Switchboard('ws://localhost:8080/ws', { token: async () => 'jwt', minDelay: 100 });
  const welcome = await sb.connect();
  const who: string = welcome.user;
  const ack = await sb.send(['bob', 'carol'], { text: 'hi', n: [1, null, true] });
  const delivered: number = ack.delivered;
  await sb.broadcast('all');
  await sb.join('lobby');
  await sb.publish('lobby', 1);
  await sb.leave('lobby');
  const users: string[] = await sb.users();
  const off = sb.on('message', (m: Message) => console.log(m.from, m.to ?? m.room, m.data));
  off();
  sb.on('recovery', (r: Recovery) => { if (!r.recovered) console.log(r.stream, r.room); });
  sb.on('state', (s: State) => console.log(s));
  sb.on('retry', ({ delay }) => console.log(delay));
  try { await sb.send('x', 1); } catch (e) { if (e instanceof SwitchboardError) console.log(e.code); }
  // @ts-expect-error data must be JSON
  await sb.send('bob', () => 1);
  // @ts-expect-error no such event
  sb.on('nonsense', () => {});
  console.log(who, delivered, users);
  sb.close();
  tok.close();
}
void use;
