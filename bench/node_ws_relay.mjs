// Minimal Node `ws` relay for `make bench`: binary WebSocket <-> TCP to one fixed target, no logic.
//
// It plays the role websockify plays (one WebSocket = one TCP connection to a fixed host:port) with
// the smallest correct amount of code, so the benchmark compares mana-gateway with a plain relay on
// Node's event loop. Back-pressure both ways: the WebSocket's socket is paused while the TCP side
// has a full buffer and vice versa. Half-close: a TCP EOF from the target becomes a WebSocket close
// after every byte was sent; a WebSocket close becomes a TCP FIN after every byte was written.
//
//   node bench/node_ws_relay.mjs --listen 127.0.0.1:0 --target 127.0.0.1:PORT
//
// Prints `PORT <n>` on stdout once listening. Listens on the given loopback address only. Accepts
// the subprotocol "binary" when offered (as websockify does) and no subprotocol otherwise.
// Exits on SIGTERM/SIGINT.

import net from 'node:net';
import process from 'node:process';
import { WebSocketServer } from 'ws';

function parseArgs(argv) {
  const out = { listen: '127.0.0.1:0', target: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--listen') out.listen = argv[++i];
    else if (a === '--target') out.target = argv[++i];
    else {
      process.stderr.write(`node_ws_relay: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!out.target) {
    process.stderr.write('node_ws_relay: --target HOST:PORT is required\n');
    process.exit(2);
  }
  return out;
}

function splitHostPort(s) {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

const args = parseArgs(process.argv.slice(2));
const listen = splitHostPort(args.listen);
const target = splitHostPort(args.target);
const HIGH_WATER = 4 * 1024 * 1024;

const wss = new WebSocketServer({
  host: listen.host,
  port: listen.port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
});

wss.on('connection', (ws) => {
  const raw = ws._socket; // the upgraded net.Socket (its 'drain' says the WebSocket side flushed)
  const tcp = net.connect({ host: target.host, port: target.port, noDelay: true });
  raw.setNoDelay(true);
  let tcpEnded = false;
  let wsPaused = false;

  tcp.on('data', (chunk) => {
    ws.send(chunk, { binary: true });
    if (ws.bufferedAmount > HIGH_WATER && !tcp.isPaused()) {
      tcp.pause();
      raw.once('drain', () => tcp.resume());
    }
  });
  tcp.on('end', () => {
    tcpEnded = true;
    // ws.close() queues the close frame behind the data already handed to send().
    ws.close(1000);
  });
  tcp.on('error', () => ws.terminate());
  tcp.on('close', () => {
    if (!tcpEnded) ws.terminate();
  });

  ws.on('message', (data) => {
    if (!tcp.write(data) && !wsPaused) {
      wsPaused = true;
      ws.pause();
      tcp.once('drain', () => {
        wsPaused = false;
        ws.resume();
      });
    }
  });
  ws.on('close', () => tcp.end());
  ws.on('error', () => tcp.destroy());
});

wss.on('listening', () => {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});
wss.on('error', (e) => {
  process.stderr.write(`node_ws_relay: ${e.message}\n`);
  process.exit(1);
});

const quit = () => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
