/**
 * `CLAIM_HEADERS`: extra claims of the Kontur profile for the origin, as `Header-Name=claim` pairs
 * (`X-Forwarded-Phone=phone_number`), and `SESSION_REVALIDATE`. A mapped header must not take the
 * place of a header the gate sets or the origin trusts for something else: the gate's identity
 * headers, the forwarding headers, hop-by-hop headers, `Cookie` and `Authorization` are refused.
 */
import { parseList, type SettingsReader } from "./reader";

/** Identity headers of the contract; any client-supplied copy is removed from every request. */
export const IDENTITY_HEADERS = [
  "x-forwarded-user",
  "x-forwarded-email",
  "x-forwarded-name",
  "x-auth-assertion",
  "x-forwarded-access-token",
  "x-forwarded-access-token-expires",
] as const;

/** One `CLAIM_HEADERS` pair; `header` is lower-case. */
export interface ClaimHeader {
  readonly header: string;
  readonly claim: string;
}

export type RevalidateMode = "userinfo" | "off";

/** RFC 9110 §5.1: a field name is a token. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CLAIM_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those a proxy consumes or rewrites itself. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/** Headers the gate sets, strips or relies on, or that carry credentials or framing. */
const RESERVED = new Set<string>([
  ...IDENTITY_HEADERS,
  ...HOP_BY_HOP,
  "cookie",
  "authorization",
  "host",
  "content-length",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-for",
  "x-real-ip",
]);

/** Folded as the stripping folds it: `X_Forwarded_User` is `X-Forwarded-User` to many servers. */
function folded(name: string): string {
  return name.toLowerCase().replace(/_/g, "-");
}

function isReserved(name: string): boolean {
  const key = folded(name);
  // The gate's own request headers (machine clients, future ones) share this prefix.
  return RESERVED.has(key) || key.startsWith("x-gate-");
}

export function readClaimHeaders(reader: SettingsReader): readonly ClaimHeader[] {
  const pairs: ClaimHeader[] = [];
  for (const entry of parseList(reader.raw("CLAIM_HEADERS"))) {
    const [rawHeader = "", rawClaim, ...rest] = entry.split("=").map((part) => part.trim());
    if (rawClaim === undefined || rest.length > 0) {
      reader.problem("CLAIM_HEADERS", `each entry must be Header-Name=claim, like X-Forwarded-Phone=phone_number (got "${entry}")`);
    } else if (!FIELD_NAME.test(rawHeader)) {
      reader.problem("CLAIM_HEADERS", `"${rawHeader}" is not a valid header name`);
    } else if (isReserved(rawHeader)) {
      reader.problem("CLAIM_HEADERS", `"${rawHeader}" is a header the gate sets or strips itself, a hop-by-hop header, Cookie or Authorization; choose another name`);
    } else if (!CLAIM_NAME.test(rawClaim)) {
      reader.problem("CLAIM_HEADERS", `"${rawClaim}" is not a claim name (letters, digits, _ . : -)`);
    } else if (pairs.some((pair) => folded(pair.header) === folded(rawHeader))) {
      reader.problem("CLAIM_HEADERS", `"${rawHeader}" is named twice`);
    } else {
      pairs.push({ header: rawHeader.toLowerCase(), claim: rawClaim });
    }
  }
  return pairs;
}

export function readRevalidate(reader: SettingsReader): RevalidateMode {
  return reader.oneOf("SESSION_REVALIDATE", ["userinfo", "off"], "userinfo");
}
