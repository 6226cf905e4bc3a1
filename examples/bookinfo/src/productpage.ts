/** `node productpage.js`: Bookinfo's productpage v1 on HOST:PORT (default 127.0.0.1:9080). */
import { createProductpageServer } from './productpage/server.js';
import { MeshClient } from './shared/mesh-client.js';
import { runService } from './shared/run-service.js';
import { serviceUrl } from './shared/service-url.js';

runService('productpage', (log) =>
  createProductpageServer({
    detailsUrl: serviceUrl(process.env, 'details'),
    reviewsUrl: serviceUrl(process.env, 'reviews'),
    ratingsUrl: serviceUrl(process.env, 'ratings'),
    client: MeshClient.fromEnv(process.env),
    log,
  }),
);
