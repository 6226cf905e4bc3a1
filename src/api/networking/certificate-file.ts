/**
 * File paths of certificates, keys and CA bundles in Gateway and DestinationRule `tls`
 * settings. Istio takes any string; Trellis requires an absolute path, because the proxy
 * that reads the file runs in its own working directory, which is not the directory the
 * configuration came from: a relative path would name a different file, or none.
 */
import { string } from '../schema/scalars.js';

export const certificateFile = string({
  nonEmpty: 'must not be empty',
  check: (v, path, ctx) => {
    if (v.startsWith('/')) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not an absolute path; the proxy reads it from its own working directory, not the configuration's: write the full path (e.g. /etc/certs/${v.replace(/^(\.\/)+/, '')})`);
    return false;
  },
});
