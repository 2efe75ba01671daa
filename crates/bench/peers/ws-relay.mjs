// A minimal WebSocket relay speaking just enough of Keyboardia's protocol for the fan-out and
// idle benchmarks: HELLO -> WELCOME, and every edit broadcast to the room with a seq. No
// validation, no storage, no rate limits: a lower bound for what any relay on Node + ws can do,
// measured beside the real server in the same run. Not part of the product.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';

const rooms = new Map(); // id -> { seq, sockets: Set }
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/api/sessions') {
    const id = randomUUID();
    rooms.set(id, { seq: 0, sockets: new Set() });
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id, url: `/s/${id}` }));
    return;
  }
  const m = req.url.match(/^\/api\/sessions\/([^/]+)$/);
  if (req.method === 'GET' && m && rooms.has(m[1])) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: m[1], seq: rooms.get(m[1]).seq }));
    return;
  }
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const m = req.url.match(/^\/api\/sessions\/([^/]+)\/ws$/);
  const room = m && rooms.get(m[1]);
  if (!room) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let player = null;
    ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return;
      }
      if (msg.type === 'HELLO') {
        player = msg.playerId;
        room.sockets.add(ws);
        ws.send(JSON.stringify({ type: 'WELCOME', seq: room.seq, you: { id: player }, players: [] }));
        return;
      }
      if (!player || !msg.mid) return;
      room.seq += 1;
      const out = JSON.stringify({ ...msg, seq: room.seq, playerId: player });
      for (const s of room.sockets) s.send(out);
    });
    ws.on('close', () => room.sockets.delete(ws));
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`ws-relay is running: open http://127.0.0.1:${port}/`);
});
