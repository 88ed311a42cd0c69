/**
 * What a response did to the gate's session cookie, read from its Set-Cookie lines. Over plain
 * http on loopback the gate names it `kg_session`, over https `__Host-kg_session`: both count.
 * A deletion (`Max-Age=0`) is not a session being set.
 */

const SESSION = /^(?:__Host-)?kg_session=([^;]*)/;
const DELETION = /;\s*Max-Age=0(?:;|$)/i;

function setCookies(answer: Response | string[]): string[] {
  return Array.isArray(answer) ? answer : answer.headers.getSetCookie();
}

/** The value of the session cookie the response stored (not a deletion), or undefined. */
export function issuedSessionCookie(answer: Response | string[]): string | undefined {
  for (const cookie of setCookies(answer)) {
    const value = SESSION.exec(cookie)?.[1];
    if (value !== undefined && value !== "" && !DELETION.test(cookie)) return value;
  }
  return undefined;
}

/** True when the response (or a raw answer's Set-Cookie list) stores a session. */
export function setsSession(answer: Response | string[]): boolean {
  return issuedSessionCookie(answer) !== undefined;
}

/** True when the response deletes the session cookie. */
export function clearedSession(answer: Response | string[]): boolean {
  return setCookies(answer).some((cookie) => SESSION.test(cookie) && DELETION.test(cookie));
}
