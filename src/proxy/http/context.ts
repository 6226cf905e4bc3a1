/** What every connection of a listener shares, whatever its protocol. */
import type { Socket } from 'node:net';
import type { Logger } from '../../core/log.js';
import type { HttpChain } from '../config/listeners.js';
import type { RuntimeConfig } from '../config/runtime.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';

export const LISTENER_MODES = { outbound: 'outbound', gateway: 'gateway', inbound: 'inbound' } as const;
export type ListenerMode = (typeof LISTENER_MODES)[keyof typeof LISTENER_MODES];

/** Who this proxy is, for metrics labels and forwarded headers. */
export interface ProxyIdentity {
  readonly workload: string;
  readonly namespace: string;
  readonly principal: string;
  readonly app: string;
  readonly version: string;
  /** Istio's metadata exchange request headers describing this proxy (name, value, ...). */
  readonly peerHeaders: readonly string[];
}

export interface ListenContext {
  readonly config: RuntimeConfig;
  readonly listenerName: string;
  readonly mode: ListenerMode;
  /**
   * The destination port whose filter chain serves these connections: the port a
   * captured connection was sent to (SO_ORIGINAL_DST) or the listener's own. The
   * outbound (HTTP proxy) listener routes by each request's port instead.
   */
  readonly destinationPort: number;
  readonly identity: ProxyIdentity;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  /**
   * The connections come over TLS this proxy terminated: requests are `https` (their
   * scheme for routing, `x-forwarded-proto`, `require_tls`).
   */
  readonly secure: boolean;
  /**
   * The filter chain the connections were matched to when that took the ClientHello
   * (terminated TLS: its server name); null to choose it per request by port. Updated
   * to the newest configuration's chain of the same name as new connections arrive.
   */
  readonly chain: HttpChain | null;
  /** Open downstream connections, for draining. */
  readonly connections: Set<Socket>;
  draining: boolean;
}
