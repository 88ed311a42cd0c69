/**
 * `ROUTES`: per-host and per-path access and upstreams, an ordered list whose first match decides
 * (src/policy/routes.ts). It arrives as JSON text (`.dev.vars`, a secret) or, written in
 * wrangler.toml as a TOML array of tables under `[vars]`, as the parsed array. Every mistake is
 * reported at once, each naming the route's index (0-based, as in the array) and the field.
 */
import { patternProblem } from "./paths";
import { asciiLowerCase, isAsciiAddress, isLoopbackHost, parseDuration, parseList, SETTING_NAMES, type SettingsReader } from "./reader";
import { SERVICE_NAME, type ServiceTokens } from "./service-tokens";

export type RouteAccess = "users" | "public" | "api" | "deny";

/** Where a route forwards: a URL (like `ORIGIN_URL`) or a Cloudflare service binding. */
export type Upstream = { readonly kind: "url"; readonly url: URL } | { readonly kind: "service"; readonly binding: string };

/**
 * The allow-lists of a route; when present they replace the global ones on that route. Named as in
 * `Config`, so the global lists are one too.
 */
export interface AllowLists {
  readonly allowedEmails: readonly string[];
  readonly allowedEmailDomains: readonly string[];
  readonly allowedSubjects: readonly string[];
}

export interface Route {
  /** Position in `ROUTES` (0-based). */
  readonly index: number;
  /** Logs, and the assertion's `route` claim; the index when not given. */
  readonly name: string;
  /** Lowercase hostname, or `*.example.ru` for its subdomains; undefined: any host. */
  readonly host: string | undefined;
  /** A pattern in the `PUBLIC_PATHS` syntax. */
  readonly path: string;
  /** Uppercase methods; undefined: any. */
  readonly methods: readonly string[] | undefined;
  readonly access: RouteAccess;
  readonly lists: AllowLists | undefined;
  /** Names from `SERVICE_TOKENS` admitted here. */
  readonly services: readonly string[];
  readonly upstream: Upstream | undefined;
  /** Seconds: step-up when the session's authentication at the provider is older. */
  readonly maxAge: number | undefined;
  /** As `CORS_PREFLIGHT`, for this route; undefined: the global setting. */
  readonly corsPreflight: "gate" | "origin" | undefined;
}

/** Whether a Worker binding of this name exists (a service binding with `fetch`). */
export type HasService = (binding: string) => boolean;

const FIELDS = ["name", "host", "path", "methods", "access", "emails", "email_domains", "subjects", "services", "origin", "max_age", "cors_preflight"];
const ACCESS: readonly RouteAccess[] = ["users", "public", "api", "deny"];
const HOST = /^(\*\.)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const METHOD = /^[A-Z]{1,20}$/;
const BINDING = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME = /^[\x20-\x7e]{1,64}$/;

/** One route's fields, read with the route's index and field in every problem. */
class RouteReader {
  constructor(
    private readonly reader: SettingsReader,
    private readonly index: number,
    private readonly fields: Record<string, unknown>,
  ) {}

  problem(field: string, message: string): void {
    this.reader.problem("ROUTES", `route ${this.index}, "${field}": ${message}`);
  }

  has(field: string): boolean {
    return this.fields[field] !== undefined;
  }

  string(field: string): string | undefined {
    const value = this.fields[field];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value.trim() === "") {
      this.problem(field, "must be a non-empty string");
      return undefined;
    }
    return value.trim();
  }

  /** A list: an array of strings, or one comma-separated string. */
  list(field: string): string[] | undefined {
    const value = this.fields[field];
    if (value === undefined) return undefined;
    const items = typeof value === "string" ? parseList(value) : Array.isArray(value) && value.every((item) => typeof item === "string") ? value.map((item: string) => item.trim()) : undefined;
    if (items === undefined || items.length === 0 || items.some((item) => item === "")) {
      this.problem(field, "must be a non-empty list of strings");
      return undefined;
    }
    return items;
  }
}

/** Parses `ROUTES`; problems go to the reader. `hasService` undefined: bindings are not checked (npm run check). */
export function readRoutes(reader: SettingsReader, services: ServiceTokens, hasService: HasService | undefined): Route[] {
  const raw = reader.value("ROUTES");
  let parsed: unknown = raw;
  if (raw === undefined || (typeof raw === "string" && raw.trim() === "")) return [];
  if (typeof raw === "string") {
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      reader.problem("ROUTES", `is not valid JSON (${error instanceof Error ? error.message : "parse error"}); it must be an array of routes like [{"path": "/admin/*", "emails": ["a@example.ru"]}]`);
      return [];
    }
  }
  if (!Array.isArray(parsed)) {
    reader.problem("ROUTES", 'must be an array of routes like [{"path": "/admin/*", "emails": ["a@example.ru"]}]');
    return [];
  }
  const routes: Route[] = [];
  parsed.forEach((entry: unknown, index) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      reader.problem("ROUTES", `route ${index}: must be an object with fields like "path" and "access"`);
      return;
    }
    const route = readRoute(new RouteReader(reader, index, entry as Record<string, unknown>), index, entry as Record<string, unknown>, services, hasService);
    if (route !== undefined) routes.push(route);
  });
  const names = new Set<string>();
  for (const route of routes) {
    if (names.has(route.name)) reader.problem("ROUTES", `route ${route.index}, "name": "${route.name}" is used by an earlier route`);
    names.add(route.name);
  }
  return routes;
}

function readRoute(r: RouteReader, index: number, fields: Record<string, unknown>, services: ServiceTokens, hasService: HasService | undefined): Route | undefined {
  for (const field of Object.keys(fields)) {
    if (!FIELDS.includes(field)) r.problem(field, `is not a route field (known: ${FIELDS.join(", ")})`);
  }
  const name = r.string("name");
  if (name !== undefined && !NAME.test(name)) r.problem("name", "must be printable ASCII, at most 64 characters");
  const path = r.string("path") ?? "/*";
  const pathProblem = patternProblem(path);
  if (pathProblem !== undefined) r.problem("path", pathProblem);
  const accessRaw = r.string("access") ?? "users";
  const access = ACCESS.find((kind) => kind === accessRaw.toLowerCase());
  if (access === undefined) r.problem("access", `must be one of ${ACCESS.join(", ")} (got "${accessRaw}")`);
  const methods = r.list("methods")?.map((method) => method.toUpperCase());
  for (const method of methods ?? []) if (!METHOD.test(method)) r.problem("methods", `"${method}" is not an HTTP method`);
  const serviceNames = r.list("services") ?? [];
  for (const service of serviceNames) {
    if (!SERVICE_NAME.test(service) || !services.has(service)) r.problem("services", `"${service}" is not a name in SERVICE_TOKENS`);
  }
  const maxAge = readMaxAge(r, fields.max_age);
  const corsRaw = r.string("cors_preflight");
  const corsPreflight = corsRaw === undefined ? undefined : corsRaw === "gate" || corsRaw === "origin" ? corsRaw : undefined;
  if (corsRaw !== undefined && corsPreflight === undefined) r.problem("cors_preflight", `must be gate or origin (got "${corsRaw}")`);
  const lists = readLists(r);
  if (access === "deny") {
    // A refusal for everyone has nothing to admit, forward or step up to: such a field is a misunderstanding.
    for (const field of ["emails", "email_domains", "subjects", "services", "origin", "max_age", "cors_preflight"]) {
      if (r.has(field)) r.problem(field, "has no effect on a route with access deny");
    }
  }
  if (access === "public" && r.has("max_age")) r.problem("max_age", "has no effect on a route with access public");
  return {
    index,
    name: name ?? String(index),
    host: readHost(r),
    path,
    methods,
    access: access ?? "users",
    lists,
    services: serviceNames,
    upstream: readUpstream(r, hasService),
    maxAge,
    corsPreflight,
  };
}

function readLists(r: RouteReader): AllowLists | undefined {
  const emails = r.list("emails");
  const domains = r.list("email_domains");
  const subjects = r.list("subjects");
  if (emails === undefined && domains === undefined && subjects === undefined) return undefined;
  // As the global lists: ASCII only (an internationalized domain in its xn-- form), lower-cased
  // for ASCII letters only, so no Unicode look-alike can match a listed address.
  const addresses = (field: string, entries: readonly string[]): string[] => {
    for (const entry of entries.filter((e) => !isAsciiAddress(e))) r.problem(field, `"${entry}" is not ASCII; write an internationalized domain in its xn-- form`);
    return entries.filter(isAsciiAddress).map(asciiLowerCase);
  };
  return {
    allowedEmails: addresses("emails", emails ?? []),
    allowedEmailDomains: addresses("email_domains", domains ?? []).map((domain) => domain.replace(/^@/, "")),
    allowedSubjects: subjects ?? [],
  };
}

function readHost(r: RouteReader): string | undefined {
  let host = r.string("host")?.toLowerCase().replace(/\.$/, "");
  if (host === undefined) return undefined;
  const wildcard = host.startsWith("*.");
  const name = wildcard ? host.slice(2) : host;
  // A Cyrillic hostname is matched in the punycode form the URL parser gives every request.
  if (/^[^\s:/?#@[\]\\%*]+$/.test(name)) host = `${wildcard ? "*." : ""}${asciiHostname(name) ?? name}`;
  if (!HOST.test(host)) {
    r.problem("host", `must be a hostname like admin.example.ru or *.example.ru, without scheme, port or path (got "${host}")`);
  }
  return host;
}

function asciiHostname(name: string): string | undefined {
  try {
    return new URL(`http://${name}/`).hostname;
  } catch {
    return undefined;
  }
}

function readMaxAge(r: RouteReader, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const seconds = typeof value === "number" ? (Number.isInteger(value) ? value : undefined) : typeof value === "string" ? parseDuration(value) : undefined;
  if (seconds === undefined || seconds < 1) {
    r.problem("max_age", "must be whole seconds (at least 1) or a number with s, m, h or d, like 300 or 15m");
    return undefined;
  }
  return seconds;
}

function readUpstream(r: RouteReader, hasService: HasService | undefined): Upstream | undefined {
  const origin = r.string("origin");
  if (origin === undefined) return undefined;
  if (origin.startsWith("service:")) {
    const binding = origin.slice("service:".length);
    const reserved = binding === "SESSIONS" || (SETTING_NAMES as readonly string[]).includes(binding);
    if (!BINDING.test(binding) || reserved) {
      r.problem("origin", `"${origin}" must name a service binding, like service:ORIGIN_WORKER`);
    } else if (hasService !== undefined && !hasService(binding)) {
      r.problem("origin", `the service binding "${binding}" does not exist; add [[services]] binding = "${binding}" to wrangler.toml`);
    }
    return { kind: "service", binding };
  }
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    r.problem("origin", `must be an https:// URL or service:BINDING (got "${origin}")`);
    return undefined;
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.hostname))) {
    r.problem("origin", `must be an https:// URL (http:// only on a loopback host) or service:BINDING (got "${url.origin}")`);
  } else if (url.search || url.hash || url.username || url.password) {
    r.problem("origin", `must be a base URL without credentials, query or fragment (got "${url.origin}${url.pathname}…")`);
  }
  return { kind: "url", url };
}
