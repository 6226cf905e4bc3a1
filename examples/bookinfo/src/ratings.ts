/** `node ratings.js`: Bookinfo's ratings v1 on HOST:PORT (default 127.0.0.1:9080). */
import { createRatingsServer } from './ratings/server.js';
import { runService } from './shared/run-service.js';

runService('ratings', (log) => createRatingsServer({ log }));
