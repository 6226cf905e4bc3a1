/** `node details.js`: Bookinfo's details v1 on HOST:PORT (default 127.0.0.1:9080). */
import { createDetailsServer } from './details/server.js';
import { runService } from './shared/run-service.js';

runService('details', (log) => createDetailsServer({ log }));
