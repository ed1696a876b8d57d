import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EvaluateFlagsRequest, FlagServiceClient, type EvaluateFlagsResponse } from "../../src/gen/bulkhead/v1/flags.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// FlagService.EvaluateFlags over a real gRPC server on the demo dataset:
// new_export_pipeline is pro/enterprise at 100%, ai_assistant 50% by tenant.
const TOKEN = "flag-caller-token";
let sidecar: TestSidecar;
let client: FlagServiceClient;
beforeAll(async () => {
  sidecar = await startSidecar({ config: { callerTokens: [TOKEN] }, runtime: { clock: testClock() } });
  client = new FlagServiceClient(sidecar.grpcAddress, credentials.createInsecure());
});
afterAll(async () => {
  client.close();
  await sidecar.close();
});

const authed = () => {
  const md = new Metadata();
  md.set("authorization", `Bearer ${TOKEN}`);
  return md;
};
const evaluate = (request: Partial<EvaluateFlagsRequest>, md = authed()) =>
  new Promise<EvaluateFlagsResponse>((resolve, reject) =>
    client.evaluateFlags(EvaluateFlagsRequest.fromPartial(request), md, (e: ServiceError | null, r) => (e ? reject(e) : resolve(r))),
  );

describe("FlagService.EvaluateFlags", () => {
  it("answers a pro tenant with details and the flag's metadata", async () => {
    const { flags, storeRevision } = await evaluate({ tenantId: "ten_acme", flagKeys: ["new_export_pipeline"] });
    expect(storeRevision).toBeGreaterThan(0);
    expect(flags).toEqual([
      {
        key: "new_export_pipeline", value: true, variant: "", reason: "TARGETING_MATCH", errorCode: "", errorMessage: "", payload: "",
        metadata: { kind: "release", owner: "team-reports", risk: "medium", createdAt: expect.any(Date), cleanupAt: new Date(Date.UTC(2027, 5, 30)) },
      },
    ]);
  });

  it("keeps the pro flag off for a free tenant and says why", async () => {
    const { flags } = await evaluate({ tenantId: "ten_globex" });
    expect(flags.map((f) => f.key)).toEqual(["ai_assistant", "new_export_pipeline"]);
    expect(flags[1]).toMatchObject({ value: false, reason: "DEFAULT", errorCode: "" });
    expect(["SPLIT", "DEFAULT"]).toContain(flags[0]!.reason);
  });

  it("answers FLAG_NOT_FOUND for a key that does not exist, next to the ones that do", async () => {
    const { flags } = await evaluate({ tenantId: "ten_acme", flagKeys: ["no_such_flag", "ai_assistant"] });
    expect(flags[0]).toMatchObject({ key: "no_such_flag", value: false, reason: "ERROR", errorCode: "FLAG_NOT_FOUND" });
    expect(flags[0]!.metadata).toBeUndefined();
    expect(flags[1]!.key).toBe("ai_assistant");
  });

  it("never answers without a tenant: INVALID_ARGUMENT naming tenant_id", async () => {
    const error = (await evaluate({ flagKeys: ["ai_assistant"] }).catch((e: ServiceError) => e)) as ServiceError;
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["tenant_id"]);
  });

  it("requires the caller token like every other caller", async () => {
    const error = (await evaluate({ tenantId: "ten_acme" }, new Metadata()).catch((e: ServiceError) => e)) as ServiceError;
    expect(error.code).toBe(status.UNAUTHENTICATED);
  });
});
