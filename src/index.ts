/**
 * The Worker's entry point. Settings are loaded once per isolate on the first request; when they are
 * wrong, every request gets a plain-text 500 naming the settings (and `/health` a 503), never the
 * value of a secret.
 */
import type { Hono } from "hono";
import { buildApp } from "./edge/app";
import type { AppEnv, Bindings } from "./edge/context";
import { ConfigError } from "./common/errors";
import { log, requestRef, withRequestLog } from "./common/log";
import { runtimeFor, type Runtime } from "./edge/runtime";
import { PAGE_HEADERS } from "./pages/pages";

const apps = new WeakMap<Runtime, Hono<AppEnv>>();

/** Where a problem is, without what is wrong: the setting, and for `ROUTES` the route's index and field. */
function problemPlace(problem: string): string {
  return /^ROUTES: route \d+, "[^"]*"/.exec(problem)?.[0] ?? problem.split(":", 1)[0]!;
}

/**
 * Any visitor sees this page, so it names the broken settings (and routes' fields) and nothing
 * else: a message may quote a non-secret value (an internal `ORIGIN_URL`), and that goes to the
 * log line only.
 */
function misconfigured(request: Request, env: Bindings, error: ConfigError): Response {
  log("config_invalid", { problems: error.problems.join(" | ") });
  const settings = [...new Set(error.problems.map((p) => p.split(":", 1)[0]!))];
  const places = [...new Set(error.problems.map(problemPlace))];
  const healthPath = `${env.AUTH_PREFIX?.trim() || "/_auth"}/health`;
  if (new URL(request.url).pathname === healthPath) {
    return Response.json({ status: "misconfigured", settings }, { status: 503, headers: { "cache-control": "no-store" } });
  }
  const page = [
    "kontur-gate is misconfigured. Settings to fix:",
    ...places.map((place) => `- ${place}`),
    "",
    "What is wrong with each is in the Worker's log (event config_invalid; `npx wrangler tail`).",
    "See the configuration table in README.md.",
    `Reference: ${requestRef()}`,
  ];
  return new Response(`${page.join("\n")}\n`, {
    status: 500,
    // The protections of every gate page (no caching, framing, sniffing or referrer), as plain text.
    headers: { ...PAGE_HEADERS, "content-type": "text/plain; charset=utf-8" },
  });
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    let runtime: Runtime;
    try {
      runtime = await runtimeFor(env);
    } catch (error) {
      if (error instanceof ConfigError) return withRequestLog(request, () => misconfigured(request, env, error));
      throw error;
    }
    let app = apps.get(runtime);
    if (app === undefined) {
      app = buildApp(runtime);
      apps.set(runtime, app);
    }
    // The request-log context is entered inside the app, only by the steps that can log.
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Bindings>;
