// Cluster peer for bench/cluster on npm `ws` + npm `redis` (4.7.1): the same protocol subset as
// ws-server.js, with every node publishing what it cannot deliver alone to one Redis channel that
// every node subscribes to, as Socket.IO's Redis adapter does (each node filters what is for its own
// clients). Usage: node ws-redis-server.js PORT REDIS_URL NODE_ID. Listens on 127.0.0.1 only; GET
// /healthz answers 200. Presence is not shared: a send to a user on another node is published
// whatever, like the adapter's emits to a room it cannot see.
"use strict";
const http = require("http");
const { WebSocketServer, WebSocket } = require("ws");
const { createClient } = require("redis");

const port = Number(process.argv[2] || 8081);
const redisUrl = process.argv[3] || "redis://127.0.0.1:6379";
const node = process.argv[4] || `node-${process.pid}`;
const CHANNEL = "wsbench.all";
const users = new Map(); // user name -> Set of sockets
let nextId = 0;

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();

function deliverLocal(to, out) {
  for (const peer of users.get(to) || []) peer.send(out);
}

function broadcastLocal(out, except) {
  wss.clients.forEach((client) => {
    if (client !== except && client.readyState === WebSocket.OPEN) client.send(out);
  });
}

const server = http.createServer((req, res) => {
  const ok = req.url === "/healthz";
  res.writeHead(ok ? 200 : 404, { "Content-Type": "application/json" });
  res.end(ok ? `{"status":"ok","connections":${wss.clients.size}}\n` : "{}\n");
});
const wss = new WebSocketServer({ server });

wss.on("connection", (ws, req) => {
  const id = `conn-${node}-${++nextId}`;
  const user = new URL(req.url, "http://x").searchParams.get("user") || id;
  if (!users.has(user)) users.set(user, new Set());
  users.get(user).add(ws);
  ws.send(JSON.stringify({ type: "welcome", id, user }));

  ws.on("message", (raw) => {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return ws.send(JSON.stringify({ type: "error", code: "bad_json", message: "message is not valid JSON" }));
    }
    if (msg.type === "send") {
      for (const to of [].concat(msg.to)) {
        const out = JSON.stringify({ type: "message", from: user, to, data: msg.data });
        deliverLocal(to, out);
        pub.publish(CHANNEL, JSON.stringify({ node, to, out }));
      }
    } else if (msg.type === "broadcast") {
      const out = JSON.stringify({ type: "message", from: user, data: msg.data });
      broadcastLocal(out, ws);
      pub.publish(CHANNEL, JSON.stringify({ node, out }));
    }
  });

  ws.on("close", () => {
    const set = users.get(user);
    set.delete(ws);
    if (set.size === 0) users.delete(user);
  });
});

(async () => {
  await pub.connect();
  await sub.connect();
  await sub.subscribe(CHANNEL, (text) => {
    const m = JSON.parse(text);
    if (m.node === node) return;
    if (m.to) deliverLocal(m.to, m.out);
    else broadcastLocal(m.out, null);
  });
  server.listen(port, "127.0.0.1", () => console.error(`ws+redis peer ${node} listening on 127.0.0.1:${port}`));
})();
