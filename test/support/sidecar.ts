import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBulkhead, type Bulkhead, type Runtime } from "../../src/compose.js";
import type { Config } from "../../src/config.js";
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
  seed(seed: StoreSeed): number;
  close(): Promise<void>;
}

export interface SidecarOptions {
  demo?: boolean;
  policyDir?: string;
  config?: Partial<Config>;
  runtime?: Partial<Runtime>;
}

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
    ...options.config,
  };
  const bulkhead = await createBulkhead(config, { log: () => {}, ...options.runtime });
  const { grpcPort, httpPort } = await bulkhead.listen();
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const client = new DecisionServiceClient(grpcAddress, credentials.createInsecure());
  // ts-proto encoders need complete messages; fromPartial fills the defaults.
  const call =
    <Req, Res>(
      method: (req: Req, md: Metadata, cb: (e: ServiceError | null, r: Res) => void) => unknown,
      complete: (partial: never) => Req,
    ) =>
    (request: unknown, metadata = new Metadata()) =>
      new Promise<Res>((resolve, reject) =>
        method.call(client, complete(request as never), metadata, (error, response) =>
          error ? reject(error) : resolve(response),
        ),
      );
  return {
    bulkhead,
    client,
    dir,
    grpcAddress,
    httpPort,
    check: call(client.check, CheckRequest.fromPartial),
    batchCheck: call(client.batchCheck, BatchCheckRequest.fromPartial),
    resolveContext: call(client.resolveContext, ResolveContextRequest.fromPartial),
    seed: (seed) => applySeed(bulkhead.writer, bulkhead.stores, seed),
    async close() {
      client.close();
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
