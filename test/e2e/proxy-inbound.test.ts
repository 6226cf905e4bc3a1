/**
 * The sidecar's inbound side with transparent capture, as in a Kubernetes pod: in a
 * network namespace the test makes (`unshare --net`, root and iptables needed), iptables
 * REDIRECTs traffic for the workload's address to the sidecar's virtualInbound listener,
 * which reads the original destination (SO_ORIGINAL_DST) to pick the filter chain and
 * forwards to the application on 127.0.0.1. Also checks Istio's peer labels on both
 * sides: the caller reports the destination workload (from EDS endpoint metadata), the
 * callee the source workload (from the metadata exchange headers, which the application
 * never sees). The scenario runs in test/e2e/netns/inbound-capture.ts.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { nativeAddon } from '../../src/proxy/listener/fast-accept.js';

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and iptables)';
  if (nativeAddon() === null) return 'needs the native helper (SO_ORIGINAL_DST): npm run build:native';
  for (const tool of ['unshare', 'iptables', 'ip']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} (apt-get install iptables iproute2 util-linux)`;
    }
  }
  return undefined;
}

const SCRIPT = fileURLToPath(new URL('./netns/inbound-capture.js', import.meta.url));

describe('sidecar inbound with iptables capture', { timeout: 60_000 }, () => {
  const why = missing();
  it('forwards a captured connection by its original destination port to the application, with peer labels on both sides', { skip: why }, async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile('unshare', ['--net', '--', process.execPath, SCRIPT], { timeout: 45_000, env: { ...process.env, TRELLIS_NETNS_PARENT: readlinkSync('/proc/self/ns/net') } }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const r = JSON.parse(out.trim().split('\n').pop() as string) as {
      status: number;
      body: string;
      appSaw: Record<string, string>[];
      sourceMetrics: string[];
      destinationMetrics: string[];
      uncaptured: string;
    };
    assert.equal(r.status, 200);
    assert.equal(r.body, 'reviews-v1 says hi');
    assert.equal(r.appSaw.length, 1);
    const seen = r.appSaw[0] as Record<string, string>;
    assert.equal(seen['x-local-address'], '127.0.0.1', 'the application is reached on loopback, through the inbound sidecar');
    assert.equal(seen['x-envoy-peer-metadata'], undefined, 'exchange headers are removed before the application');
    assert.equal(seen['x-envoy-peer-metadata-id'], undefined);
    assert.ok(seen['x-request-id']);
    const src = r.sourceMetrics.find((l) => l.includes('response_code="200"')) ?? '';
    assert.match(src, /reporter="source"/);
    assert.match(src, /source_workload="productpage-v1"/);
    assert.match(src, /destination_workload="reviews-v1"/);
    assert.match(src, /destination_canonical_revision="v1"/);
    const dst = r.destinationMetrics.find((l) => l.includes('response_code="200"')) ?? '';
    assert.match(dst, /reporter="destination"/);
    assert.match(dst, /source_workload="productpage-v1"/);
    assert.match(dst, /source_canonical_service="productpage"/);
    assert.match(dst, /destination_workload="reviews-v1"/);
    assert.match(dst, /destination_service="reviews\.default\.svc\.cluster\.local"/);
    assert.match(r.uncaptured, /^error /, 'an uncaptured connection to the inbound port matches no chain and is closed');
  });
});
