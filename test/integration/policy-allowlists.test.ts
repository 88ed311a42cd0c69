import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

const sub = (login: string): string => DEMO_USERS.find((user: { login: string }) => user.login === login)!.claims.sub;

/** demo and petrov have e-mails at example.kontur.ru; phone has no e-mail at all. */
const cases: { name: string; vars: Record<string, string>; allowed: string[]; refused: string[] }[] = [
  { name: "ALLOWED_EMAILS (any letter case)", vars: { ALLOWED_EMAILS: "Petrov@Example.Kontur.RU, boss@kontur.ru" }, allowed: ["petrov"], refused: ["demo", "phone"] },
  { name: "ALLOWED_EMAIL_DOMAINS, exact domain", vars: { ALLOWED_EMAIL_DOMAINS: "EXAMPLE.kontur.ru" }, allowed: ["demo", "petrov"], refused: ["phone"] },
  { name: "ALLOWED_EMAIL_DOMAINS: a parent domain does not admit subdomains", vars: { ALLOWED_EMAIL_DOMAINS: "kontur.ru" }, allowed: [], refused: ["demo", "petrov", "phone"] },
  { name: "ALLOWED_EMAIL_DOMAINS: no suffix tricks", vars: { ALLOWED_EMAIL_DOMAINS: "le.kontur.ru, ample.kontur.ru, example.kontur.ru.evil.com" }, allowed: [], refused: ["demo", "petrov"] },
  { name: "ALLOWED_SUBJECTS admits a phone-only account", vars: { ALLOWED_SUBJECTS: sub("phone") }, allowed: ["phone"], refused: ["demo", "petrov"] },
  { name: "lists combine: a match in any of them lets in", vars: { ALLOWED_EMAILS: "demo@example.kontur.ru", ALLOWED_SUBJECTS: sub("phone") }, allowed: ["demo", "phone"], refused: ["petrov"] },
];

describe.each(cases)("allow-lists: $name", ({ vars, allowed, refused }) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars });
  });
  afterAll(() => stack.close());

  it.each(allowed.map((login) => [login]))("%s gets through, named to the origin", async (login) => {
    const { client } = await stack.signIn(`/for-${login}`, login);
    const response = await client.get(`${stack.gate.url}/for-${login}`, NAVIGATE);
    expect(response.status).toBe(200);
    const [seen] = stack.originRequests(`/for-${login}`);
    expect(seen!.headers["x-forwarded-user"]).toBe(sub(login));
  });

  it.each(refused.map((login) => [login]))("%s gets a 403 page naming the account and offering logout; nothing is forwarded", async (login) => {
    const { client, callback } = await stack.signIn(`/for-${login}`, login);
    expect(callback.status).toBe(302);
    const response = await client.get(`${stack.gate.url}/for-${login}`, { ...NAVIGATE, "accept-language": "en" });
    expect(response.status).toBe(403);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const page = await response.text();
    const user = DEMO_USERS.find((u: { login: string }) => u.login === login)!.claims;
    expect(page).toContain(`You are signed in as ${user.email ?? user.name}`);
    expect(page).toContain('<form method="post" action="/_auth/logout"><button type="submit">Sign out</button></form>');
    const json = await client.get(`${stack.gate.url}/api/for-${login}`, { accept: "application/json", "sec-fetch-mode": "cors" });
    expect(json.status).toBe(403);
    expect(await json.json()).toMatchObject({ error: "forbidden" });
    expect(stack.originRequests(`/for-${login}`)).toEqual([]);
    expect(stack.originRequests(`/api/for-${login}`)).toEqual([]);
    // The logout the page offers works, and ends the session.
    const logout = await client.request(`${stack.gate.url}/_auth/logout`, { method: "POST", headers: { ...NAVIGATE, "sec-fetch-site": "same-origin" } });
    expect(logout.status).toBe(303);
    expect((await client.get(`${stack.gate.url}/for-${login}`, NAVIGATE)).status).toBe(302);
  });
});

describe("allow-lists: the Russian 403 page", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { ALLOWED_EMAILS: "someone@kontur.ru" } });
  });
  afterAll(() => stack.close());

  it("names a phone-only account by its name, with a reference to quote", async () => {
    const { client } = await stack.signIn("/", "phone");
    const response = await client.get(`${stack.gate.url}/`, NAVIGATE);
    expect(response.status).toBe(403);
    const page = await response.text();
    expect(page).toContain("Вы вошли как Сидорова Анна Сергеевна");
    expect(page).toMatch(/Код обращения: <code>[^<]+<\/code>/);
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    expect(stack.originRequests()).toEqual([]);
  });
});
