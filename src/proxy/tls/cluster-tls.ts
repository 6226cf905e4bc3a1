/**
 * A Cluster's UpstreamTlsContext as a rotatable slot: the `UpstreamTls` its pools connect
 * with now. An UpstreamTls is immutable (its key names pools), so a rotation builds a new
 * one from the new material and puts it in the slot; the configuration then rebuilds the
 * cluster with it, which keys new connections by the new key and closes the old pools as
 * any configuration change does (RuntimeConfig.update → UpstreamState.prune).
 */
import type { UpstreamTlsContext__Output } from '../../xds/generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { filesOf, type RotatableTls, sameMaterial, type TlsFiles } from './rotatable.js';
import { readMaterial, type TlsMaterial, tlsContextOf, type TransportSocket, UpstreamTls } from './tls-context.js';

const PATH = 'transport_socket.typed_config';

export class ClusterTls implements RotatableTls {
  readonly files: TlsFiles;
  readonly #ctx: Partial<UpstreamTlsContext__Output>;
  #tls: UpstreamTls;

  constructor(ctx: Partial<UpstreamTlsContext__Output>) {
    this.#ctx = ctx;
    this.files = filesOf(ctx.common_tls_context);
    this.#tls = new UpstreamTls(ctx, PATH);
  }

  /** What the cluster's connections are made with now. */
  get tls(): UpstreamTls {
    return this.#tls;
  }

  get material(): TlsMaterial {
    return this.#tls.material;
  }

  read(): TlsMaterial {
    return readMaterial(this.#ctx.common_tls_context, `${PATH}.common_tls_context`);
  }

  rotate(material: TlsMaterial): boolean {
    if (sameMaterial(material, this.#tls.material)) return false;
    this.#tls = new UpstreamTls(this.#ctx, PATH, material); // throws: the current one serves on
    return true;
  }
}

const slots = new WeakMap<object, { slot: ClusterTls | null }>();

/**
 * A Cluster's TLS slot, made once per decoded Cluster object (validation makes it, the
 * build reuses it), or null for plaintext. Throws for bad settings or material (the
 * Cluster is NACKed).
 */
export function clusterTlsOf(cluster: { transport_socket?: TransportSocket }): ClusterTls | null {
  const cached = slots.get(cluster);
  if (cached !== undefined) return cached.slot;
  const ctx = tlsContextOf<UpstreamTlsContext__Output>(cluster.transport_socket, TYPE_URLS.UPSTREAM_TLS_CONTEXT, 'transport_socket');
  const slot = ctx === null ? null : new ClusterTls(ctx);
  slots.set(cluster, { slot });
  return slot;
}

/** The UpstreamTls a Cluster's connections use now (rotations included), or null for plaintext. */
export function upstreamTlsOf(cluster: { transport_socket?: TransportSocket }): UpstreamTls | null {
  return clusterTlsOf(cluster)?.tls ?? null;
}
