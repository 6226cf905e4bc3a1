/**
 * `trellis run` as a user runs it: two applications, each with its sidecar, registered
 * with a control plane on 127.0.0.1. The client reaches the server by service name
 * through HTTP_PROXY; the server is reached through its own sidecar (on the workload's
 * loopback address, forwarding to the application's port). An application that exits is
 * deregistered at once; a workload whose `trellis run` dies stops heartbeating and is
 * removed after the TTL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { freePort } from './http-backends.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
const TTL_MS = 2_000;

/** An HTTP server on $PORT answering with its workload name and the request's path. */
const SERVER = `require('node:http').createServer((q, s) => s.end('hello from ' + process.env.TRELLIS_WORKLOAD + ' ' + q.url + ' via ' + q.headers['x-request-id'].length)).listen(+process.env.PORT, '127.0.0.1')`;
/** A client that calls http://hello:8080/greet through $HTTP_PROXY, prints the answer, exits. */
const CLIENT = `const p = new URL(process.env.HTTP_PROXY); require('node:http').get({ host: p.hostname, port: p.port, path: 'http://hello:8080/greet', headers: { host: 'hello:8080' } }, (r) => { let b = ''; r.on('data', (c) => b += c); r.on('end', () => { console.log(r.statusCode + ' ' + b); process.exit(r.statusCode === 200 ? 0 : 1); }); }).on('error', (e) => { console.error(e.message); process.exit(2); })`;

interface Run {
  readonly proc: ChildProcess;
  readonly exit: Promise<number | null>;
  output(): string;
}

describe('trellis run', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-run-'));
  let cp: ControlPlane;
  const runs: Run[] = [];

  function run(name: string, labels: string, port: number, script: string, detached = false): Run {
    const proc = spawn(process.execPath, [BIN, 'run', '--name', name, '--labels', labels, '--port', String(port), '--control-plane', `http://127.0.0.1:${cp.adminPort}`, '--xds', `127.0.0.1:${cp.xdsPort}`, '--log-level', 'warn', '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], detached });
    let out = '';
    proc.stdout?.on('data', (c) => (out += c));
    proc.stderr?.on('data', (c) => (out += c));
    const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const r = { proc, exit, output: () => out };
    runs.push(r);
    return r;
  }

  /** Resolves when `predicate` holds for the live registrations (checked on every change). */
  function registrations(predicate: (names: string[]) => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (!predicate(cp.registrations.list().map((r) => r.workload.name))) return false;
        clearTimeout(timer);
        off();
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        off();
        reject(new Error(`registrations now: ${JSON.stringify(cp.registrations.list().map((r) => r.workload.name))}`));
      }, timeoutMs);
      const off = cp.registrations.subscribe(() => void check());
      check();
    });
  }

  before(async () => {
    writeFileSync(join(dir, 'mesh.yaml'), `apiVersion: v1
kind: Service
metadata: {name: hello}
spec: {selector: {app: hello}, ports: [{name: http, port: 8080}]}
`);
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, registrationTtlMs: TTL_MS, log: new Logger({ level: 'warn' }), mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
  });

  after(async () => {
    for (const r of runs) {
      if (r.proc.exitCode === null && r.proc.signalCode === null) {
        try {
          if (r.proc.pid !== undefined) process.kill(-r.proc.pid, 'SIGKILL');
        } catch {
          r.proc.kill('SIGKILL');
        }
      }
    }
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects two applications through their sidecars, by service name', async () => {
    const server = run('hello-v1', 'app=hello,version=v1', await freePort(), SERVER);
    await registrations((names) => names.includes('hello-v1'), 20_000);
    const client = run('client', 'app=client', await freePort(), CLIENT);
    const code = await client.exit;
    assert.equal(code, 0, client.output());
    assert.match(client.output(), /^200 hello from hello-v1 \/greet via 36$/m, 'answered by the app behind its sidecar, with an x-request-id from the mesh');
    // The application stops (SIGTERM to trellis run): deregistered at once.
    server.proc.kill('SIGTERM');
    await server.exit;
    assert.equal(cp.registrations.list().some((r) => r.workload.name === 'hello-v1'), false);
  });

  it('deregisters an application that exits on its own, and passes on its exit code', async () => {
    const crash = run('hello-crash', 'app=hello', await freePort(), 'setTimeout(() => process.exit(3), 300)');
    assert.equal(await crash.exit, 3);
    assert.equal(cp.registrations.list().some((r) => r.workload.name === 'hello-crash'), false);
  });

  it('removes a workload whose trellis run died, within the TTL', async () => {
    const doomed = run('hello-doomed', 'app=hello', await freePort(), SERVER, true);
    await registrations((names) => names.includes('hello-doomed'), 20_000);
    const killedAt = performance.now();
    process.kill(-(doomed.proc.pid as number), 'SIGKILL'); // the whole process group: no goodbye
    await registrations((names) => !names.includes('hello-doomed'), TTL_MS + 5_000);
    const gone = performance.now() - killedAt;
    console.log(`# a killed workload left the registry ${Math.round(gone)} ms after (TTL ${TTL_MS} ms)`);
    assert.ok(gone <= TTL_MS + 2_000, `${gone} ms`);
  });
});
