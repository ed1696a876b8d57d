import type { AdminCall } from "./admin-client.js";

/**
 * A cookie-keeping HTTP client for the console (real fetch against a real
 * sidecar): what a browser does, without one, for the checks a browser adds nothing to.
 */
export interface ConsoleClient {
  cookie: string;
  get(path: string): Promise<{ status: number; body: string; headers: Headers }>;
  post(path: string, fields: Record<string, string>, opts?: { csrf?: boolean }): Promise<{ status: number; body: string; location: string | null; headers: Headers }>;
  login(token: string, operator?: string): Promise<number>;
  csrf: string;
}

export function consoleClient(httpPort: number): ConsoleClient {
  const base = `http://127.0.0.1:${httpPort}`;
  const client: ConsoleClient = {
    cookie: "",
    csrf: "",
    async get(path) {
      const response = await fetch(base + path, { headers: { cookie: client.cookie }, redirect: "manual" });
      const body = await response.text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(body);
      if (csrf) client.csrf = csrf[1]!;
      return { status: response.status, body, headers: response.headers };
    },
    async post(path, fields, opts = {}) {
      const form = new URLSearchParams({ ...(opts.csrf === false ? {} : { csrf: client.csrf }), ...fields });
      const response = await fetch(base + path, {
        method: "POST", body: form, redirect: "manual",
        headers: { cookie: client.cookie, "content-type": "application/x-www-form-urlencoded" },
      });
      const set = response.headers.get("set-cookie");
      if (set) client.cookie = set.split(";")[0]!;
      return { status: response.status, body: await response.text(), location: response.headers.get("location"), headers: response.headers };
    },
    async login(token, operator = "") {
      const r = await client.post("/console/login", { token, operator }, { csrf: false });
      if (r.status === 303) await client.get("/console/tenants");
      return r.status;
    },
  };
  return client;
}

/** Staff members issued through AdminService (bootstrap token); answers each one's token by id. */
export async function issueStaff(call: AdminCall, members: readonly (readonly [id: string, role: string])[]): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const [id, role] of members) {
    tokens[id] = (await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding" })).token;
  }
  return tokens;
}

/** A console session signed in with `token`, with `select` chosen as its tenant (with a reason) when given. */
export async function signedIn(httpPort: number, token: string, select?: string): Promise<ConsoleClient> {
  const c = consoleClient(httpPort);
  const status = await c.login(token);
  if (status !== 303) throw new Error(`console sign-in answered ${status}`);
  if (select) {
    const selected = await c.post(`/console/tenants/${select}/select`, { reason_code: "customer_request", reason_text: "ticket 7" });
    if (selected.status !== 303) throw new Error(`selecting ${select} answered ${selected.status}`);
  }
  return c;
}
