/**
 * Where a service calls another one. In the mesh the default `http://<name>:9080` is what
 * the application asks for and the sidecar resolves; outside it (tests, or services run
 * by hand) `<NAME>_URL` points straight at an address.
 */

export type ServiceName = 'details' | 'reviews' | 'ratings';

/**
 * The base URL (no trailing slash) for `name`: `<NAME>_URL` if set; otherwise the
 * original Bookinfo's variables, `http://<NAME>_HOSTNAME<.SERVICES_DOMAIN>:<NAME>_SERVICE_PORT`,
 * each defaulting to the plain Kubernetes service name and port 9080.
 */
export function serviceUrl(env: NodeJS.ProcessEnv, name: ServiceName): string {
  const upper = name.toUpperCase();
  const explicit = env[`${upper}_URL`];
  if (explicit !== undefined && explicit !== '') return explicit.replace(/\/+$/, '');
  const host = env[`${upper}_HOSTNAME`] || name;
  const domain = env.SERVICES_DOMAIN ? `.${env.SERVICES_DOMAIN}` : '';
  const port = env[`${upper}_SERVICE_PORT`] || '9080';
  return `http://${host}${domain}:${port}`;
}
