import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bodyBytes, chooseFixedRate, describeCommand, fixedRateNotes, fixedRateRows, plannedRows } from "../../bench/lib/fixed-rate.mjs";

// The fixed-rate rows compare latencies at one rate for every system; that
// only means something if the rate is below every system's capacity, and it
// must never become 0, which ghz and vegeta read as "unlimited".
describe("bench fixed rate", () => {
  it("keeps the requested rate when every peer has headroom for it", () => {
    const choice = chooseFixedRate(1000, { b0: 6000, "check-warm": 1500, opa: 2200 });
    expect(choice).toMatchObject({ rate: 1000, lowered: false, slowest: "check-warm", lowest: 1500 });
  });

  it("lowers the rate below the slowest peer's capacity, to two significant figures", () => {
    const choice = chooseFixedRate(1000, { b0: 3000, "check-warm": 469, opa: 1496 });
    // 70% of 469 = 328.3
    expect(choice).toMatchObject({ rate: 320, lowered: true, slowest: "check-warm", requested: 1000 });
    expect(chooseFixedRate(5000, { a: 100_000, b: 7_000 }).rate).toBe(4900);
    expect(chooseFixedRate(1000, { a: 12.9 }).rate).toBe(9);
  });

  it("fails closed instead of choosing no rate: a failed probe, a zero or a missing rate", () => {
    expect(() => chooseFixedRate(1000, { b0: 4000, opa: 0 })).toThrow(/no fixed rate fits: opa/);
    expect(() => chooseFixedRate(1000, { b0: 4000, opa: Number.NaN })).toThrow(/no fixed rate fits: opa/);
    expect(() => chooseFixedRate(1000, { opa: 1 })).toThrow(/no fixed rate fits/);
    expect(() => chooseFixedRate(1000, {})).toThrow(/no probed capacities/);
    expect(() => chooseFixedRate(0, { b0: 4000 })).toThrow(/at least 1\/s/);
    expect(() => chooseFixedRate(Number.NaN, { b0: 4000 })).toThrow(/at least 1\/s/);
  });

  it("names fixed-rate rows after their ordinary rows and plans the ordinary row behind each", () => {
    const rows = { b0: "B0 floor", opa: "OPA REST", batch: "BatchCheck" };
    expect(fixedRateRows(rows, ["b0", "opa", "cerbos"])).toEqual({
      "fixed-b0": "B0 floor, at the fixed rate",
      "fixed-opa": "OPA REST, at the fixed rate",
    });
    expect(plannedRows(["batch", "fixed-opa", "opa"]).sort()).toEqual(["batch", "fixed-opa", "opa"]);
  });
});

describe("bench fixed rate: notes", () => {
  it("says how the rate was chosen and names a row that did not keep up with it", () => {
    const choice = chooseFixedRate(1000, { b0: 3000, opa: 400 });
    const rows = [
      { id: "fixed-b0", row: "B0", "achieved /s": 280 },
      { id: "fixed-opa", row: "OPA", "achieved /s": 250 },
    ];
    const notes = fixedRateNotes({ choice, rows, peerInfo: {}, seconds: 3 }).join("\n");
    expect(notes).toContain("280 calls/s for 3 s");
    expect(notes).toContain("requested 1000/s; lowered");
    expect(notes).toContain("OPA: achieved 250/s, below the rate");
    expect(notes).not.toContain("B0: achieved");
  });
});

describe("bench fixed rate: peer notes", () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-fixed-rate-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(import.meta.dirname, "..", "..");

  it("shows a command with repository paths relative to it and others as base names", () => {
    expect(describeCommand(["taskset", "-c", "1", "/go/bin/ghz", "-D", "/tmp/x/warm.json", "-c", "64"])).toBe("taskset -c 1 ghz -D warm.json -c 64");
    expect(describeCommand(["taskset", "-c", "0", "/usr/bin/node", "/repo/dist/src/cli/main.js", "serve", "--db", "/tmp/db-1/bench.db"], "/repo"))
      .toBe("taskset -c 0 node dist/src/cli/main.js serve --db bench.db");
    expect(describeCommand(["/repo-other/x"], "/repo")).toBe("x");
    expect(describeCommand(undefined)).toBe("-");
  });

  it("measures gRPC bodies as the method's protobuf request and vegeta bodies as their JSON", () => {
    const request = {
      principal: { tenantId: "ten_00001", actorId: "usr_00001_01", actorType: "user", requestId: "req_1", source: "workspace_route" },
      action: "projects.read",
      resource: { type: "project", id: "res_00001", tenantId: "ten_00001" },
    };
    const data = join(dir, "data.json");
    const { action: _action, ...noAction } = request;
    writeFileSync(data, JSON.stringify([request, noAction]));
    const proto = join(root, "proto", "bulkhead", "v1", "decision.proto");
    const grpc = bodyBytes(["ghz", "--proto", proto, "-i", join(root, "proto"), "--call", "bulkhead.v1.DecisionService.Check", "-D", data]);
    // Field tags + lengths + the strings: the second request lacks the 13-byte action and its 2-byte header.
    expect(grpc).toMatchObject({ kind: "protobuf message", count: 2, max: grpc!.min + 15 });
    expect(grpc!.min).toBeLessThan(JSON.stringify(request).length);

    const targets = join(dir, "targets.json");
    const body = JSON.stringify({ input: { a: 1 } });
    writeFileSync(targets, JSON.stringify({ method: "POST", url: "http://x", body: Buffer.from(body).toString("base64") }) + "\n");
    expect(bodyBytes(["vegeta", "attack", "-targets", targets])).toEqual({ kind: "JSON body", mean: body.length, min: body.length, max: body.length, count: 1 });
  });
});
