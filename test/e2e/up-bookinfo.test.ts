/**
 * `trellis up examples/bookinfo` as a user runs it (the README's quick start): the
 * control plane, the gateway on Istio's bookinfo-gateway port (8080) and the six Bookinfo
 * workloads, each with its sidecar. Through the gateway the product page renders the
 * book's details and its reviews; Ctrl-C stops everything.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

describe('trellis up examples/bookinfo', { timeout: 90_000 }, () => {
  let up: ChildProcess | undefined;
  let out = '';

  after(() => {
    if (up !== undefined && up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
  });

  it('brings Bookinfo up behind the gateway, and stops it all on Ctrl-C', async () => {
    up = spawn(process.execPath, [BIN, 'up', 'examples/bookinfo', '--xds-port', '0', '--admin-port', '0', '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = up;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stderr?.on('data', (c) => (out += c));
    const ready = new Promise<string>((resolve, reject) => {
      proc.stdout?.on('data', (c) => {
        out += c;
        const m = /gateway\s+(http:\/\/\S+)/.exec(out);
        if (m !== null && out.includes('Press Ctrl-C to stop.')) resolve(m[1] as string);
      });
      void exited.then((code) => reject(new Error(`trellis up exited (${code}):\n${out}`)));
    });
    const url = await ready;
    assert.equal(url, 'http://127.0.0.1:8080/productpage');
    assert.match(out, /workloads\s+6 running: productpage-v1, details-v1, reviews-v1, reviews-v2, reviews-v3, ratings-v1/);
    const versions = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const page = await get(url);
      assert.equal(page.status, 200, page.body);
      assert.match(page.body, /<title>Simple Bookstore App<\/title>/);
      assert.match(page.body, /Book Details/);
      assert.match(page.body, /Reviewer1/);
      assert.doesNotMatch(page.body, /currently unavailable/);
      versions.add(/<div class="rating" style="color: (\w+)"/.exec(page.body)?.[1] ?? 'none');
    }
    console.log(`# product page through the gateway: 12/12 rendered with details and reviews; stars seen: ${[...versions].sort().join(', ')}`);
    assert.ok(versions.size >= 2, 'without VirtualServices, reviews rotates over its versions');
    proc.kill('SIGINT');
    assert.equal(await exited, 0, out);
    await assert.rejects(get(url), 'the gateway is gone after Ctrl-C');
  });
});
