// Peer server for bench/run on npm `websocket` (WebSocket-Node): switchboard's protocol subset
// (welcome, send, broadcast; docs/PROTOCOL.md) in the library's classic idiom,
// require("websocket").server with autoAcceptConnections: false. Usage: node websocket-server.js PORT.
// Listens on 127.0.0.1 only; GET /healthz answers 200 so bench/loadgen can probe it like switchboard.
"use strict";
const http = require("http");
const WebSocketServer = require("websocket").server;

const port = Number(process.argv[2] || 8082);
const users = new Map(); // user name -> Set of connections
const connections = new Set();
let nextId = 0;

const server = http.createServer((req, res) => {
  const ok = req.url === "/healthz";
  res.writeHead(ok ? 200 : 404, { "Content-Type": "application/json" });
  res.end(ok ? `{"status":"ok","connections":${connections.size}}\n` : "{}\n");
});
const wsServer = new WebSocketServer({ httpServer: server, autoAcceptConnections: false });

wsServer.on("request", (request) => {
  const connection = request.accept(null, request.origin);
  const id = `conn-${++nextId}`;
  const user = request.resourceURL.query.user || id;
  if (!users.has(user)) users.set(user, new Set());
  users.get(user).add(connection);
  connections.add(connection);
  connection.sendUTF(JSON.stringify({ type: "welcome", id, user }));

  connection.on("message", (message) => {
    if (message.type !== "utf8") return;
    let msg;
    try {
      msg = JSON.parse(message.utf8Data);
    } catch {
      return connection.sendUTF(JSON.stringify({ type: "error", code: "bad_json", message: "message is not valid JSON" }));
    }
    if (msg.type === "send") {
      for (const to of [].concat(msg.to)) {
        const out = JSON.stringify({ type: "message", from: user, to, data: msg.data });
        for (const peer of users.get(to) || []) peer.sendUTF(out);
      }
    } else if (msg.type === "broadcast") {
      const out = JSON.stringify({ type: "message", from: user, data: msg.data });
      for (const peer of connections) if (peer !== connection && peer.connected) peer.sendUTF(out);
    }
  });

  connection.on("close", () => {
    connections.delete(connection);
    const set = users.get(user);
    set.delete(connection);
    if (set.size === 0) users.delete(user);
  });
});

server.listen(port, "127.0.0.1", () => console.error(`websocket peer listening on 127.0.0.1:${port}`));
