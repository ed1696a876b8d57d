import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BulkheadError, invalidArgument } from "../errors.js";

export const SESSION_COOKIE = "bulkhead_console";

/**
 * Sent on every console response. No script-src: the console ships no
 * script, so none may run, injected or not; forms may only post back here.
 */
export const CONSOLE_HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
} as const;

/** Within the console plugin's scope only: headers on every reply and a urlencoded form parser (fastify has none built in). */
export function secureConsoleScope(app: FastifyInstance): void {
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.headers(CONSOLE_HEADERS);
    return payload;
  });
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 64 * 1024 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
}

/**
 * HttpOnly (no script reads it), SameSite=Strict (no other site's form sends
 * it), scoped to /console, expiring with the session. Max-Age, not Expires:
 * a browser whose clock differs from the server's would drop or keep an
 * absolute date wrongly; the server enforces the expiry itself anyway.
 */
export function setSessionCookie(reply: FastifyReply, id: string, lifetimeMs: number, secure: boolean): void {
  const attributes = [`${SESSION_COOKIE}=${id}`, "Path=/console", "HttpOnly", "SameSite=Strict", `Max-Age=${Math.ceil(lifetimeMs / 1000)}`];
  if (secure) attributes.push("Secure");
  reply.header("set-cookie", attributes.join("; "));
}

export function clearSessionCookie(reply: FastifyReply): void {
  reply.header("set-cookie", `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`);
}

export function sessionIdOf(request: FastifyRequest): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === SESSION_COOKIE) return value.join("=") || undefined;
  }
  return undefined;
}

/** A form's fields; anything that is not a urlencoded form is refused by name. */
export function formOf(request: FastifyRequest): Record<string, string> {
  const body = request.body;
  if (!body || typeof body !== "object") throw invalidArgument("body", "must be a form (application/x-www-form-urlencoded)");
  return body as Record<string, string>;
}

/** Compared in constant time: the response time says nothing about how much of a guess was right. */
export function requireCsrf(form: Record<string, string>, expected: string): void {
  const presented = Buffer.from(form.csrf ?? "");
  const wanted = Buffer.from(expected);
  if (presented.length !== wanted.length || !timingSafeEqual(presented, wanted)) {
    throw new BulkheadError("CONSOLE_CSRF", "csrf: the form's CSRF token is missing or wrong; reload the page and try again", "csrf");
  }
}
