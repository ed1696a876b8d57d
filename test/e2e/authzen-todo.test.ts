import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { spawnUntilServing } from "../support/processes.js";

// The AuthZEN todo interop scenario (openid/authzen): every decision of its
// own list, interop/authzen-todo-backend/test/decisions-1.0-implementers-draft.json
// (copied unchanged into examples/authzen-todo/, SOURCE.md cites the commit),
// replayed against `npm run authzen:todo-server` started as a real process
// on a fresh database, caller tokens on.
const TOKEN = "authzen-todo-token";
const FIXTURE = join(PACKAGE_ROOT, "examples", "authzen-todo");

interface Evaluation {
  subject: { type: string; id: string; properties?: Record<string, unknown> };
  action: { name: string };
  resource: { type: string; id: string; properties?: Record<string, unknown> };
}
const decisions = (JSON.parse(readFileSync(join(FIXTURE, "decisions-1.0-implementers-draft.json"), "utf8")) as {
  evaluation: { request: Evaluation; expected: boolean }[];
}).evaluation;
const seed = JSON.parse(readFileSync(join(FIXTURE, "seed.json"), "utf8")) as { users: { id: string; email: string; displayName: string }[] };
const identities = JSON.parse(readFileSync(join(FIXTURE, "policy", "bulkhead", "todo_identities", "data.json"), "utf8")) as Record<string, string>;
const pid = (name: string) => seed.users.find((u) => u.displayName.startsWith(name))!.id;

let child: ChildProcess;
let dir: string;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "authzen-todo-test-"));
  const started = await spawnUntilServing(
    process.execPath,
    [join(FIXTURE, "serve.mjs")],
    { BULKHEAD_DB: join(dir, "bulkhead.db"), BULKHEAD_HTTP_ADDR: "127.0.0.1:0", BULKHEAD_GRPC_ADDR: "127.0.0.1:0", BULKHEAD_CALLER_TOKENS: TOKEN },
  );
  child = started.child;
  base = `http://${started.addresses[0]!.httpAddress}`;
});
afterAll(() => {
  child?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

async function evaluate(body: unknown): Promise<{ decision: boolean; context: { reasons: { code: string }[] } }> {
  const response = await fetch(`${base}/access/v1/evaluation`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  expect(response.status, JSON.stringify(body)).toBe(200);
  return (await response.json()) as { decision: boolean; context: { reasons: { code: string }[] } };
}

const name = (request: Evaluation) => {
  const who = seed.users.find((u) => u.id === request.subject.id)?.displayName ?? request.subject.id;
  const owner = request.resource.properties?.ownerID;
  return `${who} ${request.action.name} ${request.resource.id}${owner ? ` owned by ${owner}` : ""}`;
};

describe("the todo scenario's 1.0 decision list", () => {
  it("has the 40 decisions of the copied file, every subject a member of the seed", () => {
    expect(decisions).toHaveLength(40);
    for (const { request } of decisions) expect(seed.users.map((u) => u.id)).toContain(request.subject.id);
  });

  it.each(decisions.map((d, i) => [`#${i + 1} ${name(d.request)}`, d.request, d.expected] as const))("%s", async (_name, request, expected) => {
    expect((await evaluate(request)).decision).toBe(expected);
  });

  it("the policy's PID -> email table says what the seed's users say", () => {
    expect(identities).toEqual(Object.fromEntries(seed.users.map((u) => [u.id, u.email])));
  });
});

// decisions-1.1-preview.json's three batches (can_update_todo, one subject, two todos) are not
// copied: their `evaluations` is an object keyed "1", "2". The same questions in 1.0's array shape:
describe("the preview's batches, asked in AuthZEN 1.0's shape", () => {
  const update = { name: "can_update_todo" };
  const todo = (owner: string) => ({ resource: { type: "todo", id: "7240d0db-8ff0-41ec-98b2-34a096273b9f", properties: { ownerID: owner } } });
  const batch = (body: unknown) =>
    fetch(`${base}/access/v1/evaluations`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(body),
    });

  it.each([
    ["Rick", "jerry@the-smiths.com", [true, true]],
    ["Morty", "morty@the-citadel.com", [false, true]],
    ["Jerry", "jerry@the-smiths.com", [false, false]],
  ] as const)("%s updating Rick's todo and one owned by %s", async (who, owner, expected) => {
    const response = await batch({ subject: { type: "user", id: pid(who) }, action: update, evaluations: [todo("rick@the-citadel.com"), todo(owner)] });
    expect(response.status).toBe(200);
    const { evaluations } = (await response.json()) as { evaluations: { decision: boolean }[] };
    expect(evaluations.map((e) => e.decision)).toEqual(expected);
  });

  it("the preview's keyed shape is a 400 naming evaluations, never an answer", async () => {
    const response = await batch({ subject: { type: "user", id: pid("Rick") }, action: update, evaluations: { "1": todo("rick@the-citadel.com") } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { field: string } };
    expect(body).not.toHaveProperty("evaluations");
    expect(body.error.field).toBe("evaluations");
  });
});

describe("the owner rule attacked", () => {
  const todo = (owner: unknown) => ({ type: "todo", id: "todo-9", properties: { ownerID: owner } });
  const morty = { type: "user", id: pid("Morty") };

  it("an editor's deny names the owner rule", async () => {
    const answer = await evaluate({ subject: morty, action: { name: "can_update_todo" }, resource: todo("rick@the-citadel.com") });
    expect(answer.decision).toBe(false);
    expect(answer.context.reasons.map((r) => r.code)).toEqual(["todo_owner_required"]);
  });

  it("asserting an email on the subject does not make it the owner: the email is the identity provider's, not the caller's", async () => {
    const claimed = { ...morty, properties: { email: "rick@the-citadel.com", ownerID: "rick@the-citadel.com" } };
    expect((await evaluate({ subject: claimed, action: { name: "can_delete_todo" }, resource: todo("rick@the-citadel.com") })).decision).toBe(false);
  });

  it.each([["no owner", undefined], ["an owner that is not a string", ["morty@the-citadel.com"]], ["an empty owner", ""]])(
    "a todo with %s is nobody's: an editor is denied",
    async (_name, owner) => {
      expect((await evaluate({ subject: morty, action: { name: "can_update_todo" }, resource: todo(owner) })).decision).toBe(false);
    },
  );

  it("a subject the store does not know is not_a_member, whatever it owns", async () => {
    const stranger = { type: "user", id: "CiRmZDk5MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs" };
    const answer = await evaluate({ subject: stranger, action: { name: "can_read_todos" }, resource: todo("morty@the-citadel.com") });
    expect(answer.decision).toBe(false);
    expect(answer.context.reasons.map((r) => r.code)).toEqual(["not_a_member"]);
  });

  it("a viewer who owns a todo still may not update it: the role decides first", async () => {
    const beth = { type: "user", id: pid("Beth") };
    const answer = await evaluate({ subject: beth, action: { name: "can_update_todo" }, resource: todo("beth@the-smiths.com") });
    expect(answer.decision).toBe(false);
    expect(answer.context.reasons.map((r) => r.code)).toEqual(["missing_permission"]);
  });
});
