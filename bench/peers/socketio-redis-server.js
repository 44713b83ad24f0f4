// Cluster peer for bench/cluster and bench/blink: Socket.IO 4.8.4 on Redis, written the way its
// documentation does it, with one of two adapters (the ADAPTER argument):
//   pubsub   @socket.io/redis-adapter 8.3.0 on npm `redis` 4.7.1 (the default): Redis pub/sub, a node
//            that misses a packet never gets it;
//   streams  @socket.io/redis-streams-adapter 0.3.1 with `connectionStateRecovery` (2 min, middlewares
//            skipped): every broadcast goes through one Redis stream, a client that comes back within
//            2 min (on any node) gets what its rooms missed, in order, and `socket.recovered` is true.
// The WebSocket transport only (no long-polling upgrade: the generator speaks Engine.IO v4 over a
// WebSocket from the first request, `loadgen --framing socketio`). Each connection joins the room
// "user:NAME" (NAME from the handshake's `user` query parameter); every protocol message is a Socket.IO
// event "msg" whose argument is the JSON object switchboard would receive or send (docs/PROTOCOL.md's
// send, broadcast, welcome, message), so the generator checks the same fields on every server. A send
// is `io.to("user:" + to).emit`, a broadcast `socket.broadcast.emit`: the adapter delivers to the local
// sockets and publishes the packet once to Redis, and every other node delivers it to its own sockets
// in that room. With recovery on, such a packet carries its stream offset as a last argument.
// Usage: node socketio-redis-server.js PORT REDIS_URL NODE_ID [pubsub|streams]. Listens on 127.0.0.1
// only; GET /healthz answers 200.
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { createClient } = require("redis");

const port = Number(process.argv[2] || 8081);
const redisUrl = process.argv[3] || "redis://127.0.0.1:6379";
const node = process.argv[4] || `node-${process.pid}`;
const adapter = process.argv[5] || "pubsub";
if (adapter !== "pubsub" && adapter !== "streams") {
  console.error(`socketio-redis-server: ADAPTER must be pubsub or streams, not ${adapter}`);
  process.exit(2);
}
let nextId = 0;

const server = http.createServer((req, res) => {
  // Socket.IO's engine answers /socket.io/ itself and passes every other request here
  const ok = req.url === "/healthz";
  res.writeHead(ok ? 200 : 404, { "Content-Type": "application/json" });
  res.end(ok ? `{"status":"ok","connections":${io.engine.clientsCount}}\n` : "{}\n");
});
const recovery = { maxDisconnectionDuration: 120000, skipMiddlewares: true };
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  ...(adapter === "streams" ? { connectionStateRecovery: recovery } : {}),
});

io.on("connection", (socket) => {
  const id = `conn-${node}-${++nextId}`;
  const user = String(socket.handshake.query.user || id);
  socket.join(`user:${user}`); // a recovered socket is back in its rooms already: this changes nothing then
  socket.emit("msg", { type: "welcome", id, user });

  socket.on("msg", (msg) => {
    if (msg === null || typeof msg !== "object") {
      return socket.emit("msg", { type: "error", code: "bad_json", message: "message is not a JSON object" });
    }
    if (msg.type === "send") {
      for (const to of [].concat(msg.to)) io.to(`user:${to}`).emit("msg", { type: "message", from: user, to, data: msg.data });
    } else if (msg.type === "broadcast") {
      socket.broadcast.emit("msg", { type: "message", from: user, data: msg.data });
    }
  });
});

(async () => {
  const pub = createClient({ url: redisUrl });
  if (adapter === "streams") {
    await pub.connect();
    io.adapter(require("@socket.io/redis-streams-adapter").createAdapter(pub));
  } else {
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(require("@socket.io/redis-adapter").createAdapter(pub, sub));
  }
  server.listen(port, "127.0.0.1", () => console.error(`socket.io+redis (${adapter}) peer ${node} listening on 127.0.0.1:${port}`));
})();
