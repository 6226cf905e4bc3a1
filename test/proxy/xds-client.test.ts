/**
 * The proxy's xDS client against the fake control plane (scripted responses, recorded
 * ACKs/NACKs), and once against the real control plane. No sleeping: every wait is on a
 * recorded request or a client update, with a timeout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { parseNode } from '../../src/control-plane/translate/node.js';
import { Logger } from '../../src/core/log.js';
import { XdsClient, type XdsClientOptions } from '../../src/proxy/xds-client.js';
import { endpointNames, routeConfigNames } from '../../src/proxy/xds/subscriptions.js';
import { anyOf, packAny } from '../../src/xds/any.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { FakeControlPlane, type RecordedRequest } from './fake-control-plane.js';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;
const FQDN = 'details.default.svc.cluster.local';
const EDS_CLUSTER = `outbound|9080||${FQDN}`;
const WAIT_MS = 5_000;

const quiet = new Logger({ level: 'silent' });

const METADATA = {
  TRELLIS_PROXY_TYPE: 'sidecar',
  NAMESPACE: 'default',
  LABELS: { app: 'details', version: 'v1' },
  SERVICE_ACCOUNT: 'bookinfo-details',
  INSTANCE_IPS: '127.0.0.1',
  OUTBOUND_PORT: '15001',
  INBOUND_PORT: 15006,
  EXTRA: { on: true, list: ['a', 1], none: null, skipped: undefined },
};

// ---- resources ----

function hcm(routeName: string) {
  return anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, {
    stat_prefix: `outbound_${routeName}`,
    rds: { route_config_name: routeName, config_source: { ads: {} } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: anyOf(TYPE_URLS.ROUTER, {}) }],
  });
}

function listener(name: string, routeName: string, port = 15001) {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm(routeName) }] }],
  };
}

function route(name: string, cluster = EDS_CLUSTER) {
  return { name, virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] };
}

function edsCluster(name: string, serviceName = name) {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: serviceName }, connect_timeout: { seconds: 1 } };
}

function staticCluster(name: string) {
  return { name, type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: name, endpoints: [] } };
}

function cla(name: string, port = 9080) {
  return { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] };
}

// ---- helpers ----

interface Setup {
  readonly cp: FakeControlPlane;
  readonly client: XdsClient;
  readonly updates: { typeUrl: string; names: string[] }[];
}

async function setup(t: TestContext, options: Partial<XdsClientOptions> = {}): Promise<Setup> {
  const cp = await FakeControlPlane.start();
  const client = new XdsClient({
    server: cp.address,
    node: { id: 'sidecar~127.0.0.1~details-v1.default~default.svc.cluster.local', cluster: 'details', metadata: METADATA, locality: { region: 'eu', zone: 'eu-1' } },
    log: quiet,
    backoff: { initialMs: 5, maxMs: 20 },
    ...options,
  });
  t.after(async () => {
    await client.close();
    await cp.close();
  });
  const updates: Setup['updates'] = [];
  client.onUpdate((typeUrl, resources) => updates.push({ typeUrl, names: [...resources.keys()] }));
  client.start();
  return { cp, client, updates };
}

const of = (stream: number, typeUrl: string, kind?: RecordedRequest['kind']) => (r: RecordedRequest) =>
  r.stream === stream && r.request.type_url === typeUrl && (kind === undefined || r.kind === kind);

const answering = (nonce: string) => (r: RecordedRequest) => r.request.response_nonce === nonce && r.kind !== 'subscribe';

/** Sends a response and returns the client's ACK or NACK of it. */
function exchange(cp: FakeControlPlane, typeUrl: string, version: string, resources: object[]): Promise<RecordedRequest> {
  const nonce = cp.send(typeUrl, version, resources);
  return cp.waitForRequest(answering(nonce));
}

/** Resolves once `done()` holds, checking now and after every client update. */
function until(client: XdsClient, done: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!done()) return;
      off();
      clearTimeout(timer);
      resolve();
    };
    const off = client.onUpdate(check);
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; status ${JSON.stringify(client.status())}`));
    }, timeoutMs);
    check();
  });
}

/** Accepts one listener (route "9080") and one EDS cluster, then their RDS and EDS. */
async function loadConfig(cp: FakeControlPlane): Promise<void> {
  await cp.waitForRequests((r) => r.stream === 1 && r.kind === 'subscribe', 2);
  await exchange(cp, CDS, 'c1', [edsCluster(EDS_CLUSTER)]);
  await cp.waitForRequest(of(1, EDS, 'subscribe'));
  await exchange(cp, LDS, 'l1', [listener('virtualOutbound', '9080')]);
  await cp.waitForRequest(of(1, RDS, 'subscribe'));
  await exchange(cp, EDS, 'e1', [cla(EDS_CLUSTER)]);
  await exchange(cp, RDS, 'r1', [route('9080')]);
}

describe('XdsClient against a fake control plane', { timeout: 30_000 }, () => {
  it('subscribes to CDS and LDS as wildcards, with the node on the first request only', async (t) => {
    const { cp, client } = await setup(t);
    const [first, second] = await cp.waitForRequests((r) => r.stream === 1, 2);
    assert.deepEqual([first?.request.type_url, second?.request.type_url], [CDS, LDS]);
    for (const r of [first, second]) {
      assert.equal(r?.kind, 'subscribe');
      assert.deepEqual(r?.request.resource_names, []);
      assert.equal(r?.request.version_info, '');
      assert.equal(r?.request.response_nonce, '');
    }
    assert.equal(second?.request.node, null, 'the node goes on the first request only');
    const node = first?.request.node;
    assert.equal(node?.id, 'sidecar~127.0.0.1~details-v1.default~default.svc.cluster.local');
    assert.equal(node?.cluster, 'details');
    assert.deepEqual({ region: node?.locality?.region, zone: node?.locality?.zone, sub_zone: node?.locality?.sub_zone }, { region: 'eu', zone: 'eu-1', sub_zone: '' });
    const fields = node?.metadata?.fields ?? {};
    assert.equal(fields.TRELLIS_PROXY_TYPE?.stringValue, 'sidecar');
    assert.equal(fields.INBOUND_PORT?.numberValue, 15006);
    assert.equal(fields.LABELS?.kind, 'structValue');
    assert.equal(fields.LABELS?.structValue?.fields.app?.stringValue, 'details');
    assert.equal(fields.LABELS?.structValue?.fields.version?.stringValue, 'v1');
    const extra = fields.EXTRA?.structValue?.fields ?? {};
    assert.deepEqual(Object.keys(extra).sort(), ['list', 'none', 'on'], 'undefined values are left out');
    assert.equal(extra.on?.boolValue, true);
    assert.equal(extra.none?.kind, 'nullValue');
    assert.deepEqual(extra.list?.listValue?.values.map((v) => v.stringValue ?? v.numberValue), ['a', 1]);
    // What the control plane reads from it.
    const parsed = parseNode(node ?? {});
    assert.deepEqual(
      { kind: parsed.kind, ns: parsed.namespace, labels: parsed.labels, sa: parsed.serviceAccount, ips: parsed.ips, out: parsed.outboundPort, in: parsed.inboundPort },
      { kind: 'sidecar', ns: 'default', labels: { app: 'details', version: 'v1' }, sa: 'bookinfo-details', ips: ['127.0.0.1'], out: 15001, in: 15006 },
    );
    assert.equal(client.status().connected, false, 'no response yet');
  });

  it('follows listeners to RDS and EDS clusters to EDS, ACKing with version and nonce', async (t) => {
    const { cp, client, updates } = await setup(t);
    await cp.waitForRequests((r) => r.stream === 1, 2);

    const cdsNonce = cp.send(CDS, 'c1', [edsCluster('a', EDS_CLUSTER), staticCluster('BlackHoleCluster')]);
    const cdsAck = await cp.waitForRequest(answering(cdsNonce));
    assert.deepEqual([cdsAck.kind, cdsAck.request.version_info, cdsAck.request.resource_names], ['ack', 'c1', []]);
    const edsSub = await cp.waitForRequest(of(1, EDS, 'subscribe'));
    assert.deepEqual(edsSub.request.resource_names, [EDS_CLUSTER], 'named by eds_cluster_config.service_name');

    const ldsNonce = cp.send(LDS, 'l1', [listener('virtualOutbound', '9080')]);
    const ldsAck = await cp.waitForRequest(answering(ldsNonce));
    assert.deepEqual([ldsAck.kind, ldsAck.request.version_info], ['ack', 'l1']);
    const rdsSub = await cp.waitForRequest(of(1, RDS, 'subscribe'));
    assert.deepEqual(rdsSub.request.resource_names, ['9080']);
    assert.deepEqual([rdsSub.request.version_info, rdsSub.request.response_nonce], ['', '']);

    const rdsAck = await exchange(cp, RDS, 'r1', [route('9080')]);
    assert.deepEqual([rdsAck.kind, rdsAck.request.version_info, rdsAck.request.resource_names], ['ack', 'r1', ['9080']]);
    const edsAck = await exchange(cp, EDS, 'e1', [cla(EDS_CLUSTER)]);
    assert.deepEqual([edsAck.kind, edsAck.request.version_info], ['ack', 'e1']);

    assert.deepEqual([...client.resources(CDS).keys()], ['a', 'BlackHoleCluster']);
    assert.deepEqual([...client.resources(LDS).keys()], ['virtualOutbound']);
    assert.deepEqual([...client.resources(RDS).keys()], ['9080']);
    assert.deepEqual([...client.resources(EDS).keys()], [EDS_CLUSTER]);
    const rc = client.resources(RDS).get('9080') as { virtual_hosts: { routes: { route: { cluster: string } }[] }[] };
    assert.equal(rc.virtual_hosts[0]?.routes[0]?.route.cluster, EDS_CLUSTER, 'decoded to the __Output shape');
    assert.deepEqual(updates.map((u) => u.typeUrl), [CDS, LDS, RDS, EDS]);
    const status = client.status();
    assert.equal(status.connected, true);
    assert.deepEqual(status.types[RDS] && { v: status.types[RDS].version, n: status.types[RDS].nonce }, { v: 'r1', n: rdsAck.request.response_nonce });
    assert.ok(status.types[LDS]?.updatedAt !== undefined);
  });

  it('NACKs a response the validator rejects, keeps the previous resources, then ACKs a valid one', async (t) => {
    const validate = { [CDS]: (c: unknown, name: string) => ((c as { type?: string }).type === 'STATIC' ? `cluster ${name}: STATIC clusters are not supported` : undefined) };
    const { cp, client, updates } = await setup(t, { validate });
    await cp.waitForRequests((r) => r.stream === 1, 2);
    await exchange(cp, CDS, 'c1', [edsCluster('good')]);
    const before = client.resources(CDS);

    const nack = await exchange(cp, CDS, 'c2', [edsCluster('good'), staticCluster('bad-one')]);
    assert.equal(nack.kind, 'nack');
    assert.equal(nack.request.version_info, 'c1', 'a NACK carries the last accepted version');
    assert.equal(nack.request.error_detail?.code, 3);
    assert.match(nack.request.error_detail?.message ?? '', /Cluster "bad-one": cluster bad-one: STATIC clusters are not supported/);
    assert.equal(client.resources(CDS), before, 'the previous resources keep serving, untouched');
    assert.equal(client.status().types[CDS]?.version, 'c1');
    assert.match(client.status().types[CDS]?.lastError ?? '', /bad-one/);

    // A resource of the wrong type is rejected too.
    const wrongType = await cp.waitForRequest(answering(cp.send(LDS, 'l1', [packAny(CDS, edsCluster('x'))])));
    assert.equal(wrongType.kind, 'nack');
    assert.match(wrongType.request.error_detail?.message ?? '', /expected an Any of type ".*Listener"/);
    assert.equal(client.resources(LDS).size, 0);

    const ack = await exchange(cp, CDS, 'c3', [edsCluster('good'), edsCluster('other')]);
    assert.deepEqual([ack.kind, ack.request.version_info], ['ack', 'c3']);
    assert.deepEqual([...client.resources(CDS).keys()], ['good', 'other']);
    assert.equal(client.status().types[CDS]?.lastError, undefined);
    assert.deepEqual(updates.map((u) => u.typeUrl), [CDS, CDS], 'no update for a NACKed response');
  });

  it('deletes a listener missing from a later LDS response and shrinks the RDS subscription', async (t) => {
    const { cp, client, updates } = await setup(t);
    await cp.waitForRequests((r) => r.stream === 1, 2);
    await exchange(cp, LDS, 'l1', [listener('a', '9080'), listener('b', '8080', 15002)]);
    const sub = await cp.waitForRequest(of(1, RDS, 'subscribe'));
    assert.deepEqual(sub.request.resource_names, ['8080', '9080']);
    const r1Ack = await exchange(cp, RDS, 'r1', [route('8080'), route('9080')]);
    assert.deepEqual([...client.resources(RDS).keys()], ['8080', '9080']);

    const mark = cp.requests.length;
    updates.length = 0;
    await exchange(cp, LDS, 'l2', [listener('a', '9080')]);
    assert.deepEqual([...client.resources(LDS).keys()], ['a']);
    const shrink = await cp.waitForRequest(of(1, RDS), { since: mark });
    assert.equal(shrink.kind, 'subscribe');
    assert.deepEqual(shrink.request.resource_names, ['9080']);
    assert.deepEqual([shrink.request.version_info, shrink.request.response_nonce], ['r1', r1Ack.request.response_nonce], 'the last accepted version and nonce');
    assert.deepEqual([...client.resources(RDS).keys()], ['9080'], 'a route configuration no listener names is dropped');
    assert.deepEqual(updates, [{ typeUrl: LDS, names: ['a'] }, { typeUrl: RDS, names: ['9080'] }]);

    // An RDS response replaces only the names it carries.
    const ack = await exchange(cp, RDS, 'r2', [route('9080', 'other')]);
    assert.equal(ack.kind, 'ack');
    const rc = client.resources(RDS).get('9080') as { virtual_hosts: { routes: { route: { cluster: string } }[] }[] };
    assert.equal(rc.virtual_hosts[0]?.routes[0]?.route.cluster, 'other');
  });

  it('reconnects after the stream ends, re-sending every subscription with its version and an empty nonce', async (t) => {
    const { cp, client } = await setup(t);
    await loadConfig(cp);
    const cached = { lds: client.resources(LDS), rds: client.resources(RDS), cds: client.resources(CDS), eds: client.resources(EDS) };
    const mark = cp.requests.length;

    cp.endStreams();
    const resent = await cp.waitForRequests((r) => r.stream === 2, 4, { since: mark });
    assert.deepEqual(
      resent.map((r) => [r.request.type_url, r.kind, r.request.version_info, r.request.response_nonce, r.request.resource_names]),
      [
        [CDS, 'subscribe', 'c1', '', []],
        [EDS, 'subscribe', 'e1', '', [EDS_CLUSTER]],
        [LDS, 'subscribe', 'l1', '', []],
        [RDS, 'subscribe', 'r1', '', ['9080']],
      ],
    );
    assert.ok(resent[0]?.request.node?.id, 'the node goes on the first request of the new stream');
    assert.ok(resent.slice(1).every((r) => r.request.node === null));
    assert.equal(client.status().connected, false, 'no response on the new stream yet');
    assert.equal(client.status().types[CDS]?.nonce, '');
    assert.deepEqual(
      { lds: client.resources(LDS), rds: client.resources(RDS), cds: client.resources(CDS), eds: client.resources(EDS) },
      cached,
      'the cached configuration kept serving',
    );

    const ack = await exchange(cp, LDS, 'l2', [listener('virtualOutbound', '9080')]);
    assert.deepEqual([ack.stream, ack.kind, ack.request.version_info], [2, 'ack', 'l2']);
    assert.equal(client.status().connected, true);
  });

  it('keeps its configuration through a control plane restart, and re-subscribes to the new one', async (t) => {
    const { cp, client } = await setup(t);
    await loadConfig(cp);
    const cached = client.resources(RDS);
    await cp.close();
    const restarted = await FakeControlPlane.start(cp.port);
    t.after(() => restarted.close());
    const resent = await restarted.waitForRequests((r) => r.stream === 1, 4);
    assert.deepEqual(resent.map((r) => [r.request.type_url, r.request.version_info, r.request.response_nonce]), [
      [CDS, 'c1', ''],
      [EDS, 'e1', ''],
      [LDS, 'l1', ''],
      [RDS, 'r1', ''],
    ]);
    assert.ok(resent[0]?.request.node !== null);
    assert.equal(client.resources(RDS), cached);
    assert.equal((await exchange(restarted, RDS, 'r2', [route('9080', 'other')])).kind, 'ack');
  });

  it('backs off while streams fail before any response, and starts over after a healthy one', async (t) => {
    const delays: number[] = [];
    const log = new Logger({ level: 'info', format: 'json', sink: { write: (line: string) => {
      const rec = JSON.parse(line) as { msg: string; delayMs?: number };
      if (rec.msg === 'reconnecting to the control plane' && rec.delayMs !== undefined) delays.push(rec.delayMs);
    } } });
    const cp0 = await FakeControlPlane.start();
    cp0.refuseStreams(3);
    t.after(() => cp0.close());
    const client = new XdsClient({ server: cp0.address, node: { id: 'p', metadata: {} }, log, backoff: { initialMs: 4, multiplier: 2, jitter: 0, maxMs: 10 } });
    t.after(() => client.close());
    client.start();
    await cp0.waitForRequest((r) => r.stream === 4 && r.request.type_url === LDS);
    assert.deepEqual(delays, [4, 8, 10], 'exponential, capped');
    await exchange(cp0, CDS, 'c1', []);
    cp0.endStreams();
    await cp0.waitForRequest((r) => r.stream === 5 && r.request.type_url === LDS);
    assert.deepEqual(delays, [4, 8, 10, 4], 'reset after a stream that got a response');
  });

  it('survives an update listener that throws', async (t) => {
    const { cp, client } = await setup(t);
    client.onUpdate(() => {
      throw new Error('consumer bug');
    });
    await cp.waitForRequests((r) => r.stream === 1, 2);
    assert.equal((await exchange(cp, CDS, 'c1', [edsCluster('a')])).kind, 'ack');
    assert.equal((await exchange(cp, CDS, 'c2', [edsCluster('b')])).kind, 'ack');
    assert.deepEqual([...client.resources(CDS).keys()], ['b']);
  });
});

describe('subscription names', { timeout: 5_000 }, () => {
  it('finds RDS names in filter chains, the default filter chain and api_listener, packed or not', () => {
    const packedHcm = packAny(TYPE_URLS.HTTP_CONNECTION_MANAGER, hcm('packed'));
    const listeners = [
      listener('a', '9080'),
      { name: 'b', default_filter_chain: { filters: [{ name: 'hcm', typed_config: hcm('default') }] } },
      { name: 'c', api_listener: { api_listener: hcm('api') } },
      { name: 'd', filter_chains: [{ filters: [{ name: 'hcm', typed_config: packedHcm }] }] },
      { name: 'e', filter_chains: [{ filters: [{ name: 'tcp', typed_config: anyOf(TYPE_URLS.TCP_PROXY, { stat_prefix: 'x', cluster: 'c' }) }] }] },
      { name: 'f', api_listener: { api_listener: anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, { route_config: { name: 'inline' } }) } },
    ];
    assert.deepEqual(routeConfigNames(listeners), ['9080', 'api', 'default', 'packed']);
  });

  it('finds EDS names of EDS clusters only, by service_name or cluster name', () => {
    assert.deepEqual(endpointNames([edsCluster('a', 'svc-a'), edsCluster('b', ''), staticCluster('c')]), ['b', 'svc-a']);
  });
});

describe('XdsClient against the real control plane', { timeout: 60_000 }, () => {
  it('gets listeners, route "9080", the outbound cluster and its endpoints for a sidecar', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-xds-client-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'details.yaml'), `apiVersion: v1
kind: Service
metadata: {name: details}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: details-v1}
spec:
  address: 127.0.0.1
  ports: {http: 19080}
  labels: {app: details, version: v1}
`);
    const cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log: quiet });
    t.after(() => cp.close());
    await cp.start();
    const client = new XdsClient({ server: `127.0.0.1:${cp.xdsPort}`, node: { id: 'details-v1.default', metadata: METADATA }, log: quiet });
    t.after(() => client.close());
    client.start();

    await until(
      client,
      () =>
        client.resources(LDS).has('virtualOutbound') &&
        client.resources(LDS).has('virtualInbound') &&
        client.resources(RDS).has('9080') &&
        client.resources(CDS).has(EDS_CLUSTER) &&
        client.resources(EDS).has(EDS_CLUSTER),
      'the sidecar configuration',
      30_000,
    );
    const endpoints = client.resources(EDS).get(EDS_CLUSTER) as { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { port_value: number } } } }[] }[] };
    assert.deepEqual(endpoints.endpoints.flatMap((l) => l.lb_endpoints.map((e) => e.endpoint.address.socket_address.port_value)), [19080]);
    const status = client.status();
    assert.equal(status.connected, true);
    for (const type of [LDS, RDS, CDS, EDS]) assert.equal(status.types[type]?.lastError, undefined, `${type} was NACKed`);
    // The control plane saw ACKs of what it sent, and no NACK.
    const proxy = cp.xds.proxies().find((p) => p.node.id === 'details-v1.default');
    assert.equal(proxy?.node.kind, 'sidecar');
    for (const type of [LDS, CDS]) {
      assert.equal(proxy?.status.types[type]?.lastNack, undefined, `${type} NACK`);
      assert.equal(status.types[type]?.version, proxy?.snapshot.types.get(type)?.version);
    }
  });
});
