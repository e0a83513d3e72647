/* Control-API endpoints of the experiment features. Filled in by issue 4. */
import type { DataPlaneWorker } from '../control/dataplane-client.js';
import type { Route } from '../control/server.js';

export function experimentRoutes(_dp: DataPlaneWorker): Route[] {
  return [];
}
