/**
 * The Hono app for one runtime: the request context first, the gate's endpoints under
 * AUTH_PREFIX, the gate in front of everything else, and one error handler.
 */
import { Hono } from "hono";
import { withRequestLog } from "../common/log";
import { authRoutes } from "./auth-routes";
import { requestContext, type AppEnv } from "./context";
import { gate } from "./gate";
import { errorResponse } from "./respond";
import type { Runtime } from "./runtime";

export function buildApp(runtime: Runtime): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestContext(runtime));
  // The gate's endpoints log most of their steps; the gate itself enters the log context only
  // where it can log (see gate.ts), and an error page always does.
  app.use(`${runtime.config.authPrefix}/*`, (c, next) => withRequestLog(c.req.raw, next));
  app.route(runtime.config.authPrefix, authRoutes());
  app.all("*", gate);
  app.onError((error, c) => withRequestLog(c.req.raw, () => errorResponse(error, c)));
  return app;
}
