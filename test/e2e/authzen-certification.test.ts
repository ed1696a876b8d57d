import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { spawnUntilServing } from "../support/processes.js";

// Every requirement of the AuthZEN Authorization API 1.0 certification
// scenario (openid/authzen, certification/authorization-api-1_0-scenario.md),
// by its section id, against `npm run authzen:certification-server` started
// as a real process on a fresh database. Caller tokens are on, as a deployment
// beyond loopback would have them.
const TOKEN = "authzen-certification-token";
let child: ChildProcess;
let dir: string;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "authzen-cert-test-"));
  const started = await spawnUntilServing(
    process.execPath,
    [join(PACKAGE_ROOT, "examples", "authzen-certification", "serve.mjs")],
    { BULKHEAD_DB: join(dir, "bulkhead.db"), BULKHEAD_HTTP_ADDR: "127.0.0.1:0", BULKHEAD_GRPC_ADDR: "127.0.0.1:0", BULKHEAD_CALLER_TOKENS: TOKEN },
  );
  child = started.child;
  base = `http://${started.addresses[0]!.httpAddress}`;
});
afterAll(() => {
  child?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}` };
const send = (path: string, body: string | undefined, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: "POST", headers: { ...auth, ...headers }, ...(body !== undefined && { body }) });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  send(path, JSON.stringify(body), { "content-type": "application/json", ...headers });
async function json(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await post(path, body);
  expect(response.status, JSON.stringify(body)).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/); // c-5 (2)
  return (await response.json()) as Record<string, unknown>;
}

const EVALUATION = "/access/v1/evaluation";
const EVALUATIONS = "/access/v1/evaluations";
const alice = { type: "user", id: "alice" };
const bob = { type: "user", id: "bob" };
const adminBob = { ...bob, properties: { role: "admin" } };
const record1 = { type: "record", id: "record-1" };
const record2 = { type: "record", id: "record-2" };
const archived2 = { ...record2, properties: { status: "archived" } };
const read = { name: "read" };
const write = { name: "write" };

async function decision(body: unknown): Promise<boolean> {
  const answer = await json(EVALUATION, body);
  expect(typeof answer.decision).toBe("boolean"); // c-2-3-1
  if (answer.context !== undefined) expect(typeof answer.context).toBe("object"); // c-2-3-2
  return answer.decision as boolean;
}

describe("C-1.4 the eight fixture decisions, C-2.2 Basic", () => {
  it.each([
    ["c-2-2-1 rule 1: alice reads record-1", { subject: alice, action: read, resource: record1 }, true],
    ["c-2-2-2 rule 4: bob writes record-1", { subject: bob, action: write, resource: record1 }, false],
    ["rule 2: alice writes record-1", { subject: alice, action: write, resource: record1 }, true],
    ["rule 3: bob reads record-1", { subject: bob, action: read, resource: record1 }, true],
    ["c-2-2-3 optional context", { subject: alice, action: read, resource: record1, context: { time: "2025-06-27T18:03-07:00", ip: "192.168.1.1" } }, true],
    ["c-2-2-4 rule 5: alice writes an archived record", { subject: alice, action: write, resource: archived2 }, false],
    ["c-2-2-5 rule 6: an admin writes an archived record", { subject: adminBob, action: write, resource: archived2 }, true],
    ["c-2-2-6 rule 7: soft delete", { subject: alice, action: { name: "delete", properties: { soft: true } }, resource: record1 }, true],
    ["c-2-2-7 rule 8: hard delete", { subject: alice, action: { name: "delete", properties: { soft: false } }, resource: record1 }, false],
    [
      "c-2-2-8 additional properties",
      {
        subject: { ...alice, properties: { department: "Sales", role: "manager" } },
        action: { name: "read", properties: { method: "GET" } },
        resource: { ...record1, properties: { status: "active", owner: "bob" } },
      },
      true,
    ],
    ["c-2-2-9 unknown fields", { subject: alice, action: read, resource: record1, foo: "bar", futureField: { nested: true } }, true],
  ])("%s", async (_name, body, expected) => {
    expect(await decision(body)).toBe(expected);
  });

  it("the reasons of a deny are in the response context (Check's reason codes)", async () => {
    const answer = await json(EVALUATION, { subject: alice, action: write, resource: archived2 });
    const context = answer.context as { reasons: { code: string }[]; decision_id: string; policy_revision: string };
    expect(context.reasons.map((r) => r.code)).toEqual(["record_archived"]);
    expect(context.decision_id).toMatch(/^dec_/);
    expect(context.policy_revision).not.toBe("");
  });
});

describe("C-2.4 error handling", () => {
  it.each([
    ["missing subject", { action: read, resource: record1 }, "subject"],
    ["missing action", { subject: alice, resource: record1 }, "action"],
    ["missing resource", { subject: alice, action: read }, "resource"],
    ["subject missing type", { subject: { id: "alice" }, action: read, resource: record1 }, "subject.type"],
    ["subject missing id", { subject: { type: "user" }, action: read, resource: record1 }, "subject.id"],
    ["action missing name", { subject: alice, action: {}, resource: record1 }, "action.name"],
    ["resource missing type", { subject: alice, action: read, resource: { id: "record-1" } }, "resource.type"],
    ["resource missing id", { subject: alice, action: read, resource: { type: "record" } }, "resource.id"],
    ["c-2-4-6 subject is a string", { subject: "alice", action: read, resource: record1 }, "subject"],
    ["c-2-4-6 action.name is a number", { subject: alice, action: { name: 123 }, resource: record1 }, "action.name"],
  ])("c-2-4-1/2 %s is 400 naming the field", async (_name, body, field) => {
    const response = await post(EVALUATION, body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { field: string } }).error.field).toBe(field);
  });

  it("c-2-4-3 a Content-Type other than application/json is 400", async () => {
    const body = JSON.stringify({ subject: alice, action: read, resource: record1 });
    expect((await send(EVALUATION, body, { "content-type": "text/plain" })).status).toBe(400);
    expect((await send(EVALUATION, body)).status).toBe(400);
  });

  it("c-2-4-4 malformed JSON and c-2-4-5 an empty body are 400", async () => {
    expect((await send(EVALUATION, "{\"subject\":", { "content-type": "application/json" })).status).toBe(400);
    expect((await send(EVALUATION, "", { "content-type": "application/json" })).status).toBe(400);
  });

  it("a missing or unknown caller token is 401 and never a decision", async () => {
    const body = JSON.stringify({ subject: alice, action: read, resource: record1 });
    for (const headers of [{}, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
      const response = await fetch(`${base}${EVALUATION}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
      expect(response.status).toBe(401);
      expect(await response.json()).not.toHaveProperty("decision");
    }
    expect((await fetch(`${base}/.well-known/authzen-configuration`)).status).toBe(401);
  });
});

describe("C-2.5 headers, C-2.6 idempotency", () => {
  it("c-2-5-1 echoes X-Request-ID, on answers and on errors", async () => {
    const ok = await post(EVALUATION, { subject: alice, action: read, resource: record1 }, { "x-request-id": "req-cert-1" });
    expect(ok.headers.get("x-request-id")).toBe("req-cert-1");
    const bad = await post(EVALUATION, { subject: alice }, { "x-request-id": "req-cert-2" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-request-id")).toBe("req-cert-2");
  });

  it("c-2-5-2 works without X-Request-ID", async () => {
    expect(await decision({ subject: alice, action: read, resource: record1 })).toBe(true);
  });

  it("c-2-6 the same request five times gets the same decision", async () => {
    for (const [body, expected] of [[{ subject: alice, action: read, resource: record1 }, true], [{ subject: bob, action: write, resource: record1 }, false]] as const) {
      for (let i = 0; i < 5; i++) expect(await decision(body)).toBe(expected);
    }
  });
});

async function decisions(body: unknown): Promise<boolean[]> {
  const answer = await json(EVALUATIONS, body);
  expect(answer).not.toHaveProperty("decision"); // c-3-3-4: omitted beside evaluations
  const items = answer.evaluations as { decision: unknown }[];
  for (const item of items) expect(typeof item.decision).toBe("boolean"); // c-3-3-3
  return items.map((i) => i.decision as boolean);
}

describe("C-3 Batch", () => {
  it("c-3-2-1 defaults from the top level, one answer per item (c-3-3-1)", async () => {
    expect(await decisions({ subject: alice, action: read, evaluations: [{ resource: record1 }, { resource: record2 }] })).toHaveLength(2);
  });

  it.each([
    ["c-3-2-2 rules 3 and 4, in order (c-3-3-2)", { subject: bob, resource: record1, evaluations: [{ action: read }, { action: write }] }, [true, false]],
    [
      "c-3-2-3 resource properties per item",
      { subject: alice, action: write, evaluations: [{ resource: { ...record1, properties: { status: "active" } } }, { resource: archived2 }] },
      [true, false],
    ],
    ["c-3-2-4 subject properties per item", { action: write, resource: archived2, evaluations: [{ subject: alice }, { subject: adminBob }] }, [false, true]],
    [
      "c-3-2-5 fully specified items",
      { evaluations: [{ subject: alice, action: read, resource: record1 }, { subject: bob, action: write, resource: record1 }] },
      [true, false],
    ],
    [
      "c-3-2-7 entity-level replacement with type/id fallback",
      {
        subject: alice,
        action: write,
        resource: { type: "record" },
        evaluations: [{ resource: { id: "record-1", properties: { status: "active" } } }, { resource: archived2 }],
      },
      [true, false],
    ],
  ])("%s", async (_name, body, expected) => {
    expect(await decisions(body)).toEqual(expected);
  });

  it("c-3-2-6 top-level context, overridden per item", async () => {
    const body = {
      subject: alice,
      action: read,
      context: { time: "2025-06-27T18:03-07:00" },
      evaluations: [{ resource: record1 }, { resource: record2, context: { time: "2025-06-27T19:00-07:00", source: "batch-override" } }],
    };
    expect(await decisions(body)).toHaveLength(2);
  });

  it("c-3-4-1 a failing item is decision false with its error in context; the others are decided", async () => {
    const answer = await json(EVALUATIONS, { subject: alice, action: read, evaluations: [{ resource: record1 }, {}] });
    const [first, second] = answer.evaluations as { decision: boolean; context: { error?: { code: string; field: string } } }[];
    expect(first!.decision).toBe(true);
    expect(second!.decision).toBe(false);
    expect(second!.context.error).toMatchObject({ code: "REQUEST_INVALID_ARGUMENT", field: "evaluations[1].resource" });
  });

  it("c-3-4-2/3 without or with empty evaluations it is a single evaluation", async () => {
    for (const extra of [{}, { evaluations: [] }]) {
      const answer = await json(EVALUATIONS, { subject: alice, action: read, resource: record1, ...extra });
      expect(answer.decision).toBe(true);
      expect(answer).not.toHaveProperty("evaluations");
    }
  });

  it("evaluations_semantic: execute_all answers all, the short circuits stop at and include the first deny or permit", async () => {
    const items = [{ resource: record1 }, { resource: archived2 }, { resource: record1 }];
    const batch = (semantic?: string) => ({ subject: alice, action: write, ...(semantic && { options: { evaluations_semantic: semantic } }), evaluations: items });
    expect(await decisions(batch())).toEqual([true, false, true]);
    expect(await decisions(batch("execute_all"))).toEqual([true, false, true]);
    expect(await decisions(batch("deny_on_first_deny"))).toEqual([true, false]);
    expect(await decisions(batch("permit_on_first_permit"))).toEqual([true]);
    const unknown = await post(EVALUATIONS, batch("first_wins"));
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { field: string } }).error.field).toBe("options.evaluations_semantic");
  });

  it("under deny_on_first_deny a failing item counts as a deny and stops the batch", async () => {
    const body = { subject: alice, action: read, options: { evaluations_semantic: "deny_on_first_deny" }, evaluations: [{}, { resource: record1 }] };
    expect(await decisions(body)).toEqual([false]);
  });
});

async function results(kind: "subject" | "resource" | "action", body: unknown): Promise<Record<string, string>[]> {
  const answer = await json(`/access/v1/search/${kind}`, body);
  expect(Array.isArray(answer.results)).toBe(true);
  if (answer.page !== undefined) expect(typeof (answer.page as { next_token: unknown }).next_token).toBe("string"); // c-4-5
  return answer.results as Record<string, string>[];
}

describe("C-4 Search", () => {
  it("c-4-2-1 subjects who may read record-1 include alice and bob, all of type user", async () => {
    const found = await results("subject", { subject: { type: "user" }, action: read, resource: record1 });
    expect(found.every((r) => r.type === "user" && typeof r.id === "string")).toBe(true);
    expect(found.map((r) => r.id)).toEqual(expect.arrayContaining(["alice", "bob"]));
  });

  it("c-4-2-2 subject search accepts context; c-4-5-1 and c-4-5-4 a page object is accepted and the list is whole", async () => {
    const found = await results("subject", { subject: { type: "user" }, action: read, resource: record1, context: { ip: "10.0.0.1" }, page: { limit: 1 } });
    expect(found.map((r) => r.id)).toEqual(expect.arrayContaining(["alice", "bob"]));
  });

  it("c-4-2-4 subjects who may write archived record-2 include bob, not alice", async () => {
    const found = await results("subject", { subject: { type: "user" }, action: write, resource: archived2 });
    expect(found.map((r) => r.id)).toEqual(["bob"]);
  });

  it("c-4-3-1 resources of type record alice may read include record-1", async () => {
    const found = await results("resource", { subject: alice, action: read, resource: { type: "record" } });
    expect(found.every((r) => r.type === "record")).toBe(true);
    expect(found.map((r) => r.id)).toContain("record-1");
  });

  it("c-4-3-3 records an admin may write include record-2", async () => {
    const found = await results("resource", { subject: adminBob, action: write, resource: { type: "record" } });
    expect(found.map((r) => r.id)).toEqual(["record-2"]);
  });

  it("c-4-4-1/2 alice's actions on record-1 include read and write (with and without context)", async () => {
    for (const extra of [{}, { context: { ip: "10.0.0.1" } }]) {
      const found = await results("action", { subject: alice, resource: record1, ...extra });
      expect(found.map((r) => r.name)).toEqual(expect.arrayContaining(["read", "write"]));
    }
  });

  it("c-4-4-3 an admin's actions on archived record-2 include write", async () => {
    const found = await results("action", { subject: adminBob, resource: archived2 });
    expect(found.map((r) => r.name)).toContain("write");
  });

  it("c-4-6 an unknown subject id or an unknown entity type is an empty list, not an error", async () => {
    expect(await results("action", { subject: { type: "user", id: "nonexistent-user" }, resource: record1 })).toEqual([]);
    expect(await results("subject", { subject: { type: "spaceship" }, action: read, resource: record1 })).toEqual([]);
    expect(await results("resource", { subject: alice, action: read, resource: { type: "spaceship" } })).toEqual([]);
    expect(await results("resource", { subject: { type: "spaceship", id: "x" }, action: read, resource: { type: "record" } })).toEqual([]);
  });

  it.each([
    ["subject", "c-4-7-1 subject search without action", { subject: { type: "user" }, resource: record1 }, "action"],
    ["resource", "c-4-7-1 resource search without subject", { action: read, resource: { type: "record" } }, "subject"],
    ["action", "c-4-7-1 action search without resource", { subject: alice }, "resource"],
    ["subject", "c-4-7-2 subject search, resource without id", { subject: { type: "user" }, action: read, resource: { type: "record" } }, "resource.id"],
    ["resource", "c-4-7-2 resource search, subject without id", { subject: { type: "user" }, action: read, resource: { type: "record" } }, "subject.id"],
  ] as const)("%s: %s is 400", async (kind, _name, body, field) => {
    const response = await post(`/access/v1/search/${kind}`, body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { field: string } }).error.field).toBe(field);
  });
});

describe("C-6 Discovery", () => {
  it("c-6-1..5 the metadata names this PDP and every endpoint under it", async () => {
    const response = await fetch(`${base}/.well-known/authzen-configuration`, { headers: auth });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const metadata = (await response.json()) as Record<string, string>;
    expect(metadata.policy_decision_point).toBe(base);
    expect(metadata).toEqual({
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
      search_subject_endpoint: `${base}/access/v1/search/subject`,
      search_resource_endpoint: `${base}/access/v1/search/resource`,
      search_action_endpoint: `${base}/access/v1/search/action`,
    });
  });
});
