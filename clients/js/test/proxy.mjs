// proxy.mjs: a TCP proxy the tests control, to make a client's network blink.
// Every connection to the proxy is piped to the server; blink(ms) cuts every connection through it at
// once (as a lost network does) and refuses new ones for ms (each is reset as soon as it arrives).
import net from 'node:net';

export async function startProxy(upstreamPort) {
  const sockets = new Set();
  let refuseUntil = 0;
  let lastAccepted = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.resetAndDestroy();
      return;
    }
    lastAccepted = Date.now();
    // no Nagle on either side: a relay must not hold back the small frames of a handshake
    const up = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true });
    client.setNoDelay(true);
    sockets.add(client);
    sockets.add(up);
    const end = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    /** When the last connection was let through (Date.now()), 0 if none was. */
    get lastAccepted() {
      return lastAccepted;
    },
    /** Cuts every connection and refuses new ones for ms. */
    blink(ms) {
      refuseUntil = Date.now() + ms;
      for (const s of sockets) s.resetAndDestroy();
      sockets.clear();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
