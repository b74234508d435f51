// The built-in demo app `npm start` puts behind porthole: a page, an SSE clock and a
// WebSocket echo — the three kinds of traffic a real local-first app sends.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>porthole demo</title>
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f3f3f3;padding:.1rem .3rem}button{font:inherit}</style></head>
<body><h1>porthole demo app</h1>
<p>You reached a local app through porthole. It saw you as:</p><pre id="who"></pre>
<h2>SSE clock</h2><p id="clock" aria-live="polite">connecting…</p>
<h2>WebSocket echo</h2>
<form id="f"><label for="msg">Message</label> <input id="msg" value="hello"> <button>Send</button></form>
<pre id="log"></pre>
<script>
fetch('api/whoami').then(r => r.json()).then(j => { document.getElementById('who').textContent = JSON.stringify(j, null, 2); });
const es = new EventSource('events');
es.onmessage = e => { document.getElementById('clock').textContent = e.data; };
const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
const log = t => { document.getElementById('log').textContent += t + '\\n'; };
ws.onmessage = e => log('echo: ' + e.data);
document.getElementById('f').onsubmit = ev => { ev.preventDefault(); ws.send(document.getElementById('msg').value); };
</script></body></html>`;

export interface DemoApp {
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

export function createDemoApp(options: { tickMs?: number } = {}): DemoApp {
  const tickMs = options.tickMs ?? 1000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const timers = new Set<NodeJS.Timeout>();
  return {
    handleRequest(req, res) {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/' || path === '/index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(PAGE);
      } else if (path === '/api/whoami') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            identity: req.headers['x-porthole-identity']?.toString().replace(/; sig=.*$/, '') ?? null,
            ingress: req.headers['x-porthole-ingress'] ?? null,
          }),
        );
      } else if (path === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        const send = () => res.write(`data: ${new Date().toISOString()}\n\n`);
        send();
        const t = setInterval(send, tickMs);
        timers.add(t);
        res.on('close', () => {
          clearInterval(t);
          timers.delete(t);
        });
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    },
    handleUpgrade(req, socket, head) {
      if ((req.url ?? '').split('?')[0] !== '/ws') {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    close() {
      for (const t of timers) clearInterval(t);
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
