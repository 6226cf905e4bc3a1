/**
 * Which HTTP proxy (the workload's sidecar) a request goes through: `HTTP_PROXY` and
 * `NO_PROXY`, read the way Python's `requests` and curl read them, because Istio's
 * Bookinfo services (Python, Java, Ruby, Node) honour them the same way.
 */

export interface ProxyAddress {
  /** Host name or IP (IPv6 without brackets), ready for `net.connect`. */
  readonly host: string;
  readonly port: number;
}

export interface ProxyConfig {
  /** The sidecar's outbound listener, or null to connect directly. */
  readonly proxy: ProxyAddress | null;
  /** Lowercased `NO_PROXY` entries without a leading dot; `*` bypasses the proxy for every host. */
  readonly noProxy: readonly string[];
}

export const DIRECT: ProxyConfig = { proxy: null, noProxy: [] };

/**
 * Parses a proxy URL such as `http://127.0.0.1:15001` (a bare `host:port` is taken as
 * http). Throws on anything else: a bad proxy is a setup mistake the operator must see
 * at start, not a per-request failure.
 */
export function parseProxy(value: string): ProxyAddress {
  const text = value.includes('://') ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`HTTP_PROXY=${value} is not a URL; expected e.g. http://127.0.0.1:15001`);
  }
  if (url.protocol !== 'http:') {
    throw new Error(`HTTP_PROXY=${value}: only an http:// proxy is supported (the sidecar's plain-text outbound listener)`);
  }
  return { host: stripBrackets(url.hostname), port: url.port === '' ? 80 : Number(url.port) };
}

/** Reads `HTTP_PROXY`/`http_proxy` and `NO_PROXY`/`no_proxy` (upper case wins, as in curl). */
export function proxyConfigFromEnv(env: NodeJS.ProcessEnv): ProxyConfig {
  const proxy = env.HTTP_PROXY ?? env.http_proxy ?? '';
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? '';
  return {
    proxy: proxy === '' ? null : parseProxy(proxy),
    noProxy: noProxy.split(',').map(normaliseNoProxyEntry).filter((e) => e !== ''),
  };
}

/** The proxy to use for `hostname` (as `URL.hostname` gives it), or null for a direct connection. */
export function proxyFor(config: ProxyConfig, hostname: string): ProxyAddress | null {
  if (config.proxy === null) return null;
  const host = stripBrackets(hostname).toLowerCase();
  for (const entry of config.noProxy) {
    if (entry === '*' || host === entry || host.endsWith(`.${entry}`)) return null;
  }
  return config.proxy;
}

function normaliseNoProxyEntry(raw: string): string {
  let entry = raw.trim().toLowerCase();
  if (entry.startsWith('.')) entry = entry.slice(1);
  if (entry.startsWith('[')) return stripBrackets(entry.replace(/\]:\d+$/, ']'));
  // A `host:port` entry bypasses the proxy for the host on any port (simpler than curl, enough for a demo).
  const colon = entry.indexOf(':');
  return colon !== -1 && entry.indexOf(':', colon + 1) === -1 ? entry.slice(0, colon) : entry;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
