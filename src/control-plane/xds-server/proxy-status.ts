/** What the control plane knows about each connected proxy: for `/debug/syncz`. */
export interface NackInfo {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: string;
}

export interface TypeSyncStatus {
  /** Resource names the proxy subscribes to; `["*"]` for a wildcard subscription. */
  subscribed: readonly string[];
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: string;
  ackedVersion?: string;
  ackedAt?: string;
  lastNack?: NackInfo;
}

export interface ProxyStatus {
  readonly streamId: number;
  readonly proxyId: string;
  readonly kind: string;
  readonly connectedAt: string;
  connected: boolean;
  disconnectedAt?: string;
  readonly types: Record<string, TypeSyncStatus>;
}
