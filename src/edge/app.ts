/**
 * The Hono app for one runtime: the request context first, the gate's endpoints under
 * AUTH_PREFIX, the gate in front of everything else, and one error handler.
 */
import { Hono } from "hono";
import { authRoutes } from "./auth-routes";
import { requestContext, type AppEnv } from "./context";
import { gate } from "./gate";
import { errorResponse } from "./respond";
import type { Runtime } from "./runtime";

export function buildApp(runtime: Runtime): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestContext(runtime));
  app.route(runtime.config.authPrefix, authRoutes());
  app.all("*", gate);
  app.onError(errorResponse);
  return app;
}
