import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBulkhead, type Bulkhead, type SidecarRuntime } from "../../src/compose.js";
import { DEFAULT_ADMIN_REASON_CODES, OFREP_DEFAULT_RATE_PER_MINUTE, type Config } from "../../src/config.js";
import { applySeed, type StoreSeed } from "../../src/demo/store-seed.js";
import {
  BatchCheckRequest,
  CheckRequest,
  DecisionServiceClient,
  ResolveContextRequest,
  type BatchCheckResponse,
  type CheckResponse,
  type TenantContext,
} from "../../src/gen/bulkhead/v1/decision.js";
import {
  CommitRequest,
  ConsumeRequest,
  EntitlementServiceClient,
  GetEntitlementsRequest,
  ReleaseRequest,
  ReportUsageRequest,
  ReserveRequest,
  type CommitResponse,
  type ConsumeResponse,
  type GetEntitlementsResponse,
  type ReleaseResponse,
  type ReportUsageResponse,
  type ReserveResponse,
} from "../../src/gen/bulkhead/v1/entitlements.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";

export type DeepPartialRequest<T> = { [K in keyof T]?: T[K] extends object | undefined ? DeepPartialRequest<NonNullable<T[K]>> : T[K] };

/** A started sidecar on free loopback ports with a real gRPC client. */
export interface TestSidecar {
  bulkhead: Bulkhead;
  client: DecisionServiceClient;
  dir: string;
  grpcAddress: string;
  httpPort: number;
  check(request: DeepPartialRequest<CheckRequest>, metadata?: Metadata): Promise<CheckResponse>;
  batchCheck(request: DeepPartialRequest<BatchCheckRequest>): Promise<BatchCheckResponse>;
  resolveContext(request: DeepPartialRequest<ResolveContextRequest>): Promise<TenantContext>;
  entitlementClient: EntitlementServiceClient;
  entitlements: {
    get(request: DeepPartialRequest<GetEntitlementsRequest>): Promise<GetEntitlementsResponse>;
    consume(request: DeepPartialRequest<ConsumeRequest>, metadata?: Metadata): Promise<ConsumeResponse>;
    reserve(request: DeepPartialRequest<ReserveRequest>): Promise<ReserveResponse>;
    commit(request: DeepPartialRequest<CommitRequest>): Promise<CommitResponse>;
    release(request: DeepPartialRequest<ReleaseRequest>): Promise<ReleaseResponse>;
    report(request: DeepPartialRequest<ReportUsageRequest>): Promise<ReportUsageResponse>;
  };
  seed(seed: StoreSeed): number;
  close(): Promise<void>;
}

export interface SidecarOptions {
  demo?: boolean;
  policyDir?: string;
  config?: Partial<Config>;
  runtime?: Partial<SidecarRuntime>;
}

export const TEST_WEBHOOK_SECRET = "whsec_test_primary";
export const TEST_ADMIN_TOKEN = "admin-test-token";
export const TEST_SYNC_TOKEN = "sync-test-token";

export async function startSidecar(options: SidecarOptions = {}): Promise<TestSidecar> {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-test-"));
  const config: Config = {
    grpcAddr: "127.0.0.1:0",
    httpAddr: "127.0.0.1:0",
    dbPath: join(dir, "bulkhead.db"),
    policyDir: options.policyDir ?? DEFAULT_POLICY_DIR,
    demo: options.demo ?? true,
    callerTokens: [],
    watchPolicies: false,
    stripeWebhookSecrets: [TEST_WEBHOOK_SECRET],
    stripeApiKey: "",
    stripeApiUrl: "",
    pastDueGraceDays: 14,
    adminTokens: [TEST_ADMIN_TOKEN],
    syncTokens: [TEST_SYNC_TOKEN],
    adminReasonCodes: [...DEFAULT_ADMIN_REASON_CODES],
    impersonationMaxTtlSeconds: 3600,
    ofrepRatePerMinute: OFREP_DEFAULT_RATE_PER_MINUTE,
    policyWorkers: 2,
    policyBudgetMs: 250,
    ...options.config,
  };
  const bulkhead = await createBulkhead(config, { log: () => {}, ...options.runtime });
  const { grpcPort, httpPort } = await bulkhead.listen();
  // Replicated mode: the tests start from a sidecar that has caught up (as a load balancer would wait for /readyz).
  await bulkhead.replication?.whenCaughtUp();
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const client = new DecisionServiceClient(grpcAddress, credentials.createInsecure());
  const entitlementClient = new EntitlementServiceClient(grpcAddress, credentials.createInsecure());
  // ts-proto encoders need complete messages; fromPartial fills the defaults.
  type Callback<Res> = (error: ServiceError | null, response: Res) => void;
  const call =
    <Req, Res>(target: object, method: string, complete: (partial: never) => Req) =>
    (request: unknown, metadata = new Metadata()) =>
      new Promise<Res>((resolve, reject) => {
        const fn = (target as Record<string, (req: Req, md: Metadata, cb: Callback<Res>) => void>)[method]!;
        fn.call(target, complete(request as never), metadata, (error, response) => (error ? reject(error) : resolve(response)));
      });
  return {
    bulkhead,
    client,
    dir,
    grpcAddress,
    httpPort,
    check: call<CheckRequest, CheckResponse>(client, "check", CheckRequest.fromPartial),
    batchCheck: call<BatchCheckRequest, BatchCheckResponse>(client, "batchCheck", BatchCheckRequest.fromPartial),
    resolveContext: call<ResolveContextRequest, TenantContext>(client, "resolveContext", ResolveContextRequest.fromPartial),
    entitlementClient,
    entitlements: {
      get: call<GetEntitlementsRequest, GetEntitlementsResponse>(entitlementClient, "getEntitlements", GetEntitlementsRequest.fromPartial),
      consume: call<ConsumeRequest, ConsumeResponse>(entitlementClient, "consume", ConsumeRequest.fromPartial),
      reserve: call<ReserveRequest, ReserveResponse>(entitlementClient, "reserve", ReserveRequest.fromPartial),
      commit: call<CommitRequest, CommitResponse>(entitlementClient, "commit", CommitRequest.fromPartial),
      release: call<ReleaseRequest, ReleaseResponse>(entitlementClient, "release", ReleaseRequest.fromPartial),
      report: call<ReportUsageRequest, ReportUsageResponse>(entitlementClient, "reportUsage", ReportUsageRequest.fromPartial),
    },
    seed: (seed) => applySeed(bulkhead.writer, bulkhead.stores, seed, bulkhead.apiKeys),
    async close() {
      client.close();
      entitlementClient.close();
      await bulkhead.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Check request in the demo dataset, with overrides. */
export function checkRequest(
  tenantId: string,
  actorId: string,
  action: string,
  resourceTenantId: string = tenantId,
  extra: DeepPartialRequest<CheckRequest> = {},
): DeepPartialRequest<CheckRequest> {
  return {
    principal: { tenantId, actorId, requestId: `req_${action}` },
    action,
    resource: { type: action.split(".")[0], id: "res_1", tenantId: resourceTenantId },
    ...extra,
  };
}

export const codes = (response: CheckResponse): string[] => response.reasons.map((r) => r.code);
