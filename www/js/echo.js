// echo.js: the "echo mode" socket, the classic first WebSocket demo.
// A second WebSocket to the same /ws, opened with the `echo-protocol` subprotocol: the server sends every
// message straight back, with no JSON and no presence (docs/PROTOCOL.md, "Connecting"). No DOM here.
// Events: state {state}, echoed {data}, closed {code}.
import { READY_STATES, socketUrl } from './chat.js';

export class EchoSocket extends EventTarget {
  #ws = null;
  #wanted = false;

  get state() { return READY_STATES[this.#ws ? this.#ws.readyState : 3]; }
  /** The subprotocol the server picked ('' before the socket opens). */
  get protocol() { return this.#ws ? this.#ws.protocol : ''; }

  open() {
    if (this.#ws && this.#ws.readyState < WebSocket.CLOSING) return;
    this.#wanted = true;
    const ws = new WebSocket(socketUrl(), ['echo-protocol']);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    this.#emit('state', { state: this.state });
    ws.addEventListener('open', () => {
      // Closing while CONNECTING makes the browser log an error: close once open instead.
      if (!this.#wanted) ws.close(1000, 'bye');
      this.#emit('state', { state: this.state });
    });
    ws.addEventListener('message', (ev) => {
      const data = typeof ev.data === 'string' ? ev.data : `[${ev.data.byteLength} bytes of binary]`;
      this.#emit('echoed', { data });
    });
    ws.addEventListener('close', (ev) => {
      if (this.#ws !== ws) return;
      this.#emit('state', { state: this.state });
      this.#emit('closed', { code: ev.code });
    });
  }

  close() {
    this.#wanted = false;
    if (this.#ws && this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000, 'bye');
    this.#emit('state', { state: this.state });
  }

  send(text) {
    if (this.state !== 'OPEN') throw new Error('The echo socket is not open.');
    this.#ws.send(text);
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}
