/**
 * The upstream when nginx is not installed: a minimal HTTP/1.1 responder on `node:net`
 * that answers every request head with a fixed `200 ok` (keep-alive, pipelining-safe).
 * Requests must have no body, as the benchmark's do. Run as a child process:
 *   node dist/bench/proxy-upstream.js <port>
 * and prints `listening` once bound to 127.0.0.1.
 */
import { createServer, type Socket } from 'node:net';

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok', 'latin1');
const HEAD_END = '\r\n\r\n';

/** Unterminated head bytes per socket (a head split over reads). */
const pending = new WeakMap<Socket, string>();

function onData(this: Socket, chunk: Buffer): void {
  const text = (pending.get(this) ?? '') + chunk.toString('latin1');
  let heads = 0;
  let from = 0;
  for (let i = text.indexOf(HEAD_END); i >= 0; i = text.indexOf(HEAD_END, from)) {
    heads++;
    from = i + HEAD_END.length;
  }
  pending.set(this, text.slice(from));
  if (heads === 1) this.write(RESPONSE);
  else if (heads > 1) this.write(Buffer.concat(Array.from({ length: heads }, () => RESPONSE)));
}

const port = Number(process.argv[2] ?? '0');
const server = createServer({ noDelay: true }, (socket) => {
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
});
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
