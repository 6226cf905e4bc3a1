/**
 * The signed-in user. Istio's productpage keeps it in Flask's session cookie (`session`);
 * here the cookie holds the name itself. The original's login checks no password, so a
 * signature would protect nothing: anyone can sign in as anyone, which is the point of
 * the demo (`jason` gets routed to reviews v2).
 */

export const SESSION_COOKIE = 'session';

/**
 * Whether `user` can be sent as the `end-user` header value (RFC 9110 field-value
 * characters that Node accepts). Names outside it are refused at login and ignored in a
 * forged cookie, rather than failing every outbound call.
 */
export function isValidUser(user: string): boolean {
  return user !== '' && /^[\x20-\x7e\x80-\xff]+$/.test(user) && user.trim() === user;
}

/** The user named by the `session` cookie in a Cookie header, or '' when signed out. */
export function sessionUser(cookieHeader: string | undefined): string {
  if (cookieHeader === undefined) return '';
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    let user: string;
    try {
      user = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return '';
    }
    return isValidUser(user) ? user : '';
  }
  return '';
}

/** The Set-Cookie value that signs `user` in. */
export function signInCookie(user: string): string {
  return `${SESSION_COOKIE}=${encodeURIComponent(user)}; Path=/; HttpOnly; SameSite=Lax`;
}

/** The Set-Cookie value that signs out (expires the cookie). */
export function signOutCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
}
