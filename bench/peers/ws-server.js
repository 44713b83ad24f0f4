// Peer server for bench/run on npm `ws`: switchboard's protocol subset (welcome, send, broadcast;
// docs/PROTOCOL.md) in ws's own idiom. Usage: node ws-server.js PORT. Listens on 127.0.0.1 only;
// GET /healthz answers 200 so bench/loadgen can probe it like switchboard.
"use strict";
const http = require("http");
const { WebSocketServer, WebSocket } = require("ws");

const port = Number(process.argv[2] || 8081);
const users = new Map(); // user name -> Set of sockets
let nextId = 0;

const server = http.createServer((req, res) => {
  const ok = req.url === "/healthz";
  res.writeHead(ok ? 200 : 404, { "Content-Type": "application/json" });
  res.end(ok ? `{"status":"ok","connections":${wss.clients.size}}\n` : "{}\n");
});
const wss = new WebSocketServer({ server });

wss.on("connection", (ws, req) => {
  const id = `conn-${++nextId}`;
  const user = new URL(req.url, "http://x").searchParams.get("user") || id;
  if (!users.has(user)) users.set(user, new Set());
  users.get(user).add(ws);
  ws.send(JSON.stringify({ type: "welcome", id, user }));

  ws.on("message", (raw, isBinary) => {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return ws.send(JSON.stringify({ type: "error", code: "bad_json", message: "message is not valid JSON" }));
    }
    if (msg.type === "send") {
      for (const to of [].concat(msg.to)) {
        const out = JSON.stringify({ type: "message", from: user, to, data: msg.data });
        for (const peer of users.get(to) || []) peer.send(out);
      }
    } else if (msg.type === "broadcast") {
      const out = JSON.stringify({ type: "message", from: user, data: msg.data });
      wss.clients.forEach((client) => {
        if (client !== ws && client.readyState === WebSocket.OPEN) client.send(out);
      });
    }
  });

  ws.on("close", () => {
    const set = users.get(user);
    set.delete(ws);
    if (set.size === 0) users.delete(user);
  });
});

server.listen(port, "127.0.0.1", () => console.error(`ws peer listening on 127.0.0.1:${port}`));
