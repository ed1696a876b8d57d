import { Metadata } from "@grpc/grpc-js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// AuthZEN over the demo dataset: the tenant boundary holds exactly as over
// gRPC Check. acme: usr_alice owner, usr_bob viewer, usr_carol viewer;
// globex: usr_carol admin; initech: usr_dave admin.
const TOKEN = "authzen-tenant-token";
let dir: string;
let multi: TestSidecar;
let single: TestSidecar;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "authzen-tenants-"));
  const resources = join(dir, "resources.json");
  writeFileSync(
    resources,
    JSON.stringify({
      resources: [
        { tenant_id: "ten_acme", type: "project", id: "prj_acme_1" },
        { tenant_id: "ten_acme", type: "project", id: "prj_acme_2" },
        { tenant_id: "ten_globex", type: "project", id: "prj_globex_1" },
      ],
    }),
  );
  const common = { callerTokens: [TOKEN], authzenResources: resources };
  multi = await startSidecar({ config: common, runtime: { clock: testClock() } });
  single = await startSidecar({ config: { ...common, authzenDefaultTenant: "ten_acme" }, runtime: { clock: testClock() } });
});
afterAll(async () => {
  await multi?.close();
  await single?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function post(sidecar: TestSidecar, path: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`http://127.0.0.1:${sidecar.httpPort}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const user = (id: string, tenant?: string) => ({ type: "user", id, ...(tenant && { properties: { tenant_id: tenant } }) });
const project = (id: string, tenant?: string) => ({ type: "project", id, ...(tenant && { properties: { tenant_id: tenant } }) });
const read = { name: "projects.read" };
const codes = (answer: Record<string, any>) => (answer.context.reasons as { code: string }[]).map((r) => r.code);

describe("no tenant and no default tenant", () => {
  it("an evaluation is a 400 naming the tenant field, never an answer", async () => {
    const { status, body } = await post(multi, "/access/v1/evaluation", { subject: user("usr_alice"), action: read, resource: project("prj_1") });
    expect(status).toBe(400);
    expect(body).not.toHaveProperty("decision");
    expect(body.error.field).toBe("subject.properties.tenant_id");
  });

  it("a batch item without a tenant is decision false with the error; an item with one is decided", async () => {
    const { status, body } = await post(multi, "/access/v1/evaluations", {
      action: read,
      evaluations: [{ subject: user("usr_alice"), resource: project("prj_1") }, { subject: user("usr_alice", "ten_acme"), resource: project("prj_1", "ten_acme") }],
    });
    expect(status).toBe(200);
    expect(body.evaluations[0]).toMatchObject({ decision: false, context: { error: { field: "evaluations[0].subject.properties.tenant_id" } } });
    expect(body.evaluations[1].decision).toBe(true);
  });

  it.each([
    ["subject", { subject: { type: "user" }, action: read, resource: project("prj_1") }],
    ["resource", { subject: user("usr_alice"), action: read, resource: { type: "project" } }],
    ["action", { subject: user("usr_alice"), resource: project("prj_1") }],
  ])("%s search is a 400 too", async (kind, body) => {
    const { status } = await post(multi, `/access/v1/search/${kind}`, body);
    expect(status).toBe(400);
  });
});

describe("tenant A never sees tenant B", () => {
  it("a resource of another tenant is wrong_tenant, with the same reasons as gRPC Check", async () => {
    const { body } = await post(multi, "/access/v1/evaluation", { subject: user("usr_alice", "ten_acme"), action: read, resource: project("prj_1", "ten_globex") });
    expect(body.decision).toBe(false);
    expect(codes(body)).toEqual(["wrong_tenant"]);
    const metadata = new Metadata();
    metadata.set("authorization", `Bearer ${TOKEN}`);
    const grpc = await multi.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"), metadata);
    expect(grpc.allow).toBe(false);
    expect(grpc.reasons.map((r) => r.code)).toEqual(codes(body));
  });

  it("claiming a tenant one is not a member of is not_a_member", async () => {
    const { body } = await post(multi, "/access/v1/evaluation", { subject: user("usr_alice", "ten_globex"), action: read, resource: project("prj_1", "ten_globex") });
    expect(body.decision).toBe(false);
    expect(codes(body)).toEqual(["not_a_member"]);
  });

  it("a subject with no tenant, only the resource's, is checked for membership there", async () => {
    const { body } = await post(multi, "/access/v1/evaluation", { subject: user("usr_alice"), action: read, resource: project("prj_1", "ten_globex") });
    expect(codes(body)).toEqual(["not_a_member"]);
  });

  it("a resource without a tenant in a multi-tenant deployment is resource_tenant_missing, not assumed to be the subject's", async () => {
    const { body } = await post(multi, "/access/v1/evaluation", { subject: user("usr_alice", "ten_acme"), action: read, resource: project("prj_1") });
    expect(body.decision).toBe(false);
    expect(codes(body)).toContain("resource_tenant_missing");
  });

  it("subject search lists only the named tenant's members", async () => {
    const acme = await post(multi, "/access/v1/search/subject", { subject: { type: "user" }, action: read, resource: project("prj_1", "ten_acme") });
    expect(acme.body.results.map((r: { id: string }) => r.id).sort()).toEqual(["usr_alice", "usr_bob", "usr_carol"]);
    const globex = await post(multi, "/access/v1/search/subject", { subject: { type: "user" }, action: read, resource: project("prj_1", "ten_globex") });
    expect(globex.body.results.map((r: { id: string }) => r.id)).toEqual(["usr_carol"]);
  });

  it("resource search lists only the tenant's registered resources, and none of a tenant the subject is not in", async () => {
    const own = await post(multi, "/access/v1/search/resource", { subject: user("usr_alice", "ten_acme"), action: read, resource: { type: "project" } });
    expect(own.body.results.map((r: { id: string }) => r.id).sort()).toEqual(["prj_acme_1", "prj_acme_2"]);
    // Naming globex through the resource moves the search there, where alice is no member: nothing.
    const other = await post(multi, "/access/v1/search/resource", { subject: user("usr_alice"), action: read, resource: { type: "project", properties: { tenant_id: "ten_globex" } } });
    expect(other.status).toBe(200);
    expect(other.body.results).toEqual([]);
    // A subject tenant wins over a resource tenant: still only acme's resources.
    const mixed = await post(multi, "/access/v1/search/resource", {
      subject: user("usr_alice", "ten_acme"),
      action: read,
      resource: { type: "project", properties: { tenant_id: "ten_globex" } },
    });
    expect(mixed.body.results.map((r: { id: string }) => r.id).sort()).toEqual(["prj_acme_1", "prj_acme_2"]);
  });

  it("action search answers only what Check allows in the named tenant", async () => {
    const own = await post(multi, "/access/v1/search/action", { subject: user("usr_bob", "ten_acme"), resource: project("prj_1", "ten_acme") });
    const names = own.body.results.map((r: { name: string }) => r.name);
    expect(names).toContain("projects.read");
    expect(names).not.toContain("projects.delete"); // a viewer
    const other = await post(multi, "/access/v1/search/action", { subject: user("usr_bob", "ten_globex"), resource: project("prj_1", "ten_globex") });
    expect(other.body.results).toEqual([]);
  });
});

describe("a configured default tenant", () => {
  it("answers requests that name no tenant, for that tenant only", async () => {
    const { body } = await post(single, "/access/v1/evaluation", { subject: user("usr_alice"), action: read, resource: project("prj_1") });
    expect(body.decision).toBe(true);
    const dave = await post(single, "/access/v1/evaluation", { subject: user("usr_dave"), action: read, resource: project("prj_1") });
    expect(codes(dave.body)).toEqual(["not_a_member"]);
  });

  it("never replaces a tenant the request names, known or not", async () => {
    const globex = await post(single, "/access/v1/evaluation", { subject: user("usr_alice", "ten_globex"), action: read, resource: project("prj_1") });
    expect(globex.body.decision).toBe(false);
    const unknown = await post(single, "/access/v1/evaluation", { subject: user("usr_alice", "ten_nowhere"), action: read, resource: project("prj_1", "ten_nowhere") });
    expect(unknown.body.decision).toBe(false);
    expect(codes(unknown.body)).toEqual(["not_a_member"]);
  });

  it("search over the default tenant lists only its members", async () => {
    const { body } = await post(single, "/access/v1/search/subject", { subject: { type: "user" }, action: read, resource: project("prj_1") });
    expect(body.results.map((r: { id: string }) => r.id).sort()).toEqual(["usr_alice", "usr_bob", "usr_carol"]);
  });
});

describe("the Check path", () => {
  it("logs AuthZEN decisions like Checks and honours context.min_revision", async () => {
    const revision = multi.bulkhead.tracker.revision;
    const { body } = await post(multi, "/access/v1/evaluation", {
      subject: user("usr_alice", "ten_acme"),
      action: read,
      resource: project("prj_logged", "ten_acme"),
      context: { min_revision: revision },
    });
    expect(body.decision).toBe(true);
    expect(body.context.store_revision).toBeGreaterThanOrEqual(revision);
    multi.bulkhead.decisionLog.flush();
    const logged = multi.bulkhead.db.prepare("SELECT tenant_id, actor_id, action, allow FROM decision_log WHERE decision_id = ?").get(body.context.decision_id);
    expect(logged).toEqual({ tenant_id: "ten_acme", actor_id: "usr_alice", action: "projects.read", allow: 1 });
  });

  it("a min_revision the store has not reached is an error status, never a decision", async () => {
    const { status, body } = await post(multi, "/access/v1/evaluation", {
      subject: user("usr_alice", "ten_acme"),
      action: read,
      resource: project("prj_1", "ten_acme"),
      context: { min_revision: multi.bulkhead.tracker.revision + 1000 },
    });
    expect(status).toBeGreaterThanOrEqual(400);
    expect(body).not.toHaveProperty("decision");
    expect(body.error.code).toBe("STORE_REVISION_NOT_REACHED");
  });
});

// A per-tenant PDP: /t/{tenant}/access/v1/... answers for that tenant only,
// whatever the body claims. globex's caller (usr_carol is admin there and a
// viewer in acme) attacks acme's path, and acme's caller attacks globex's.
describe("per-tenant PDP paths", () => {
  const acme = "/t/ten_acme";
  const globex = "/t/ten_globex";
  const get = async (sidecar: TestSidecar, path: string) => {
    const response = await fetch(`http://127.0.0.1:${sidecar.httpPort}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };

  it("the tenant's metadata names endpoints under its path", async () => {
    const { status, body } = await get(multi, "/.well-known/authzen-configuration/t/ten_acme");
    expect(status).toBe(200);
    const pdp = `http://127.0.0.1:${multi.httpPort}/t/ten_acme`;
    expect(body).toEqual({
      policy_decision_point: pdp,
      access_evaluation_endpoint: `${pdp}/access/v1/evaluation`,
      access_evaluations_endpoint: `${pdp}/access/v1/evaluations`,
      search_subject_endpoint: `${pdp}/access/v1/search/subject`,
      search_resource_endpoint: `${pdp}/access/v1/search/resource`,
      search_action_endpoint: `${pdp}/access/v1/search/action`,
    });
    const bad = await get(multi, "/.well-known/authzen-configuration/t/-nope");
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("path.tenant");
    expect((await fetch(`http://127.0.0.1:${multi.httpPort}/.well-known/authzen-configuration/t/ten_acme`)).status).toBe(401);
  });

  it("a request naming no tenant is decided for the path's tenant, even with no default tenant", async () => {
    const { status, body } = await post(multi, `${acme}/access/v1/evaluation`, { subject: user("usr_alice"), action: read, resource: project("prj_1") });
    expect(status).toBe(200);
    expect(body.decision).toBe(true);
    const dave = await post(multi, `${acme}/access/v1/evaluation`, { subject: user("usr_dave"), action: read, resource: project("prj_1") });
    expect(codes(dave.body)).toEqual(["not_a_member"]);
  });

  it.each([
    ["the subject", { subject: user("usr_carol", "ten_globex"), action: read, resource: project("prj_1") }, "subject.properties.tenant_id"],
    ["the resource", { subject: user("usr_carol"), action: read, resource: project("prj_globex_1", "ten_globex") }, "resource.properties.tenant_id"],
    ["both", { subject: user("usr_carol", "ten_globex"), action: read, resource: project("prj_globex_1", "ten_globex") }, "subject.properties.tenant_id"],
    ["the resource, subject naming the path's own tenant", { subject: user("usr_carol", "ten_acme"), action: read, resource: project("prj_1", "ten_globex") }, "resource.properties.tenant_id"],
  ])("%s naming another tenant on acme's path is a 400 naming the field, never an answer", async (_name, body, field) => {
    const { status, body: answer } = await post(multi, `${acme}/access/v1/evaluation`, body);
    expect(status).toBe(400);
    expect(answer).not.toHaveProperty("decision");
    expect(answer.error.field).toBe(field);
  });

  it("the default tenant of a single-tenant deployment does not override a tenant path", async () => {
    // single's default is acme; on globex's path alice (acme only) is no member.
    const { body } = await post(single, `${globex}/access/v1/evaluation`, { subject: user("usr_alice"), action: read, resource: project("prj_1") });
    expect(codes(body)).toEqual(["not_a_member"]);
    const claimed = await post(single, `${globex}/access/v1/evaluation`, { subject: user("usr_alice", "ten_acme"), action: read, resource: project("prj_1") });
    expect(claimed.status).toBe(400);
  });

  it("a batch item naming another tenant is decision false with the error; the others are decided for the path's tenant", async () => {
    const { status, body } = await post(multi, `${acme}/access/v1/evaluations`, {
      action: read,
      evaluations: [
        { subject: user("usr_carol", "ten_globex"), resource: project("prj_globex_1") },
        { subject: user("usr_carol"), resource: project("prj_1") },
        { subject: user("usr_carol"), resource: project("prj_globex_1", "ten_globex") },
      ],
    });
    expect(status).toBe(200);
    expect(body.evaluations[0]).toMatchObject({ decision: false, context: { error: { code: "REQUEST_INVALID_ARGUMENT", field: "evaluations[0].subject.properties.tenant_id" } } });
    expect(body.evaluations[1].decision).toBe(true); // carol is a viewer in acme
    expect(body.evaluations[2]).toMatchObject({ decision: false, context: { error: { field: "evaluations[2].resource.properties.tenant_id" } } });
  });

  it("subject search on acme's path lists acme's members only, and refuses a body naming globex", async () => {
    const own = await post(multi, `${acme}/access/v1/search/subject`, { subject: { type: "user" }, action: read, resource: project("prj_1") });
    expect(own.body.results.map((r: { id: string }) => r.id).sort()).toEqual(["usr_alice", "usr_bob", "usr_carol"]);
    const other = await post(multi, `${acme}/access/v1/search/subject`, { subject: { type: "user" }, action: read, resource: project("prj_1", "ten_globex") });
    expect(other.status).toBe(400);
    expect(other.body).not.toHaveProperty("results");
  });

  it("resource search on acme's path never returns globex's resources, whoever asks", async () => {
    const carol = await post(multi, `${acme}/access/v1/search/resource`, { subject: user("usr_carol"), action: read, resource: { type: "project" } });
    expect(carol.body.results.map((r: { id: string }) => r.id).sort()).toEqual(["prj_acme_1", "prj_acme_2"]);
    const onGlobex = await post(multi, `${globex}/access/v1/search/resource`, { subject: user("usr_carol"), action: read, resource: { type: "project" } });
    expect(onGlobex.body.results.map((r: { id: string }) => r.id)).toEqual(["prj_globex_1"]);
    for (const body of [
      { subject: user("usr_carol", "ten_globex"), action: read, resource: { type: "project" } },
      { subject: user("usr_carol"), action: read, resource: { type: "project", properties: { tenant_id: "ten_globex" } } },
    ]) {
      const attack = await post(multi, `${acme}/access/v1/search/resource`, body);
      expect(attack.status).toBe(400);
      expect(attack.body).not.toHaveProperty("results");
    }
  });

  it("action search on a tenant path answers for that tenant: carol is admin in globex, a viewer in acme", async () => {
    const names = async (path: string) =>
      (await post(multi, `${path}/access/v1/search/action`, { subject: user("usr_carol"), resource: project("prj_1") })).body.results.map((r: { name: string }) => r.name);
    expect(await names(globex)).toContain("projects.delete");
    expect(await names(acme)).toContain("projects.read");
    expect(await names(acme)).not.toContain("projects.delete");
    const attack = await post(multi, `${acme}/access/v1/search/action`, { subject: user("usr_carol", "ten_globex"), resource: project("prj_1") });
    expect(attack.status).toBe(400);
  });

  it("a malformed tenant in the path is a 400 naming path.tenant, and the caller token still applies", async () => {
    const { status, body } = await post(multi, "/t/ten%20acme/access/v1/evaluation", { subject: user("usr_alice"), action: read, resource: project("prj_1") });
    expect(status).toBe(400);
    expect(body.error.field).toBe("path.tenant");
    const anonymous = await fetch(`http://127.0.0.1:${multi.httpPort}${acme}/access/v1/evaluation`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ subject: user("usr_alice"), action: read, resource: project("prj_1") }),
    });
    expect(anonymous.status).toBe(401);
  });
});
