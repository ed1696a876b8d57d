import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.js";

/** A staff member's impersonation, as the console remembers it to draw the banner. */
export interface ConsoleImpersonation {
  sessionId: string;
  tenantId: string;
  asActorId: string;
  expiresAt: number;
}

/**
 * One signed-in browser. The credential stays here, server-side: the cookie
 * carries only the random id, and every request authenticates the token
 * again, so a staff member disabled a moment ago is refused on their next click.
 */
export interface ConsoleSession {
  id: string;
  token: string;
  /** The person behind a shared credential (bootstrap), "" for a staff token. */
  operator: string;
  csrf: string;
  expiresAt: number;
  /** The one tenant this session explicitly selected (with a reason); pages show no other tenant's data. */
  selectedTenant: string | null;
  impersonation: ConsoleImpersonation | null;
}

export const CONSOLE_SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** In-process sessions: a restart signs everyone out, which is the safe direction. */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number = CONSOLE_SESSION_TTL_MS,
    private readonly random: () => string = () => randomBytes(32).toString("base64url"),
  ) {}

  create(token: string, operator: string): ConsoleSession {
    this.sweep();
    const session: ConsoleSession = {
      id: this.random(), token, operator, csrf: this.random(), expiresAt: this.clock.now() + this.ttlMs, selectedTenant: null, impersonation: null,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session, or why there is none (so the login page can say "expired"). */
  find(id: string | undefined): ConsoleSession | "expired" | undefined {
    const session = id ? this.sessions.get(id) : undefined;
    if (!session) return undefined;
    if (session.expiresAt <= this.clock.now()) {
      this.sessions.delete(session.id);
      return "expired";
    }
    return session;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  /** Drops expired sessions, so abandoned browsers do not pile up. */
  private sweep(): void {
    const now = this.clock.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}
