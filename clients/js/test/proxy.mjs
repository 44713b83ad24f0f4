// proxy.mjs: a TCP proxy the tests control, to make a client's network blink.
// Every connection to the proxy is piped to the server; blink(ms) cuts every connection through it at
// once (as a lost network does) and refuses new ones for ms (each is reset as soon as it arrives).
import net from 'node:net';

export async function startProxy(upstreamPort) {
  const sockets = new Set();
  let refuseUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.resetAndDestroy();
      return;
    }
    const up = net.connect(upstreamPort, '127.0.0.1');
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
