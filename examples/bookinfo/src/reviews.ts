/**
 * `node reviews.js`: Bookinfo's reviews on HOST:PORT (default 127.0.0.1:9080); the version
 * comes from VERSION or SERVICE_VERSION (v1: no stars, v2: black, v3: red), overridable
 * with ENABLE_RATINGS and STAR_COLOR.
 */
import { hostname } from 'node:os';
import { reviewsConfigFromEnv } from './reviews/config.js';
import { createReviewsServer } from './reviews/server.js';
import { MeshClient } from './shared/mesh-client.js';
import { runService } from './shared/run-service.js';
import { serviceUrl } from './shared/service-url.js';

runService('reviews', (log) => {
  const config = reviewsConfigFromEnv(process.env);
  return createReviewsServer({
    config,
    ratingsUrl: serviceUrl(process.env, 'ratings'),
    client: MeshClient.fromEnv(process.env),
    // The original reports its pod (HOSTNAME in a container) and CLUSTER_NAME. In the
    // local mesh the workload's name is the pod's: "Reviews served by: reviews-v2", not
    // the machine's host name, shows which version answered.
    podname: process.env.TRELLIS_WORKLOAD || process.env.HOSTNAME || hostname(),
    clustername: process.env.CLUSTER_NAME || 'null',
    log,
  });
});
