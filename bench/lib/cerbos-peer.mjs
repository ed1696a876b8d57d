// The Cerbos peer of the decision benchmark (issue 19, ADR 86): Cerbos 0.55.0
// (the binary in the npm package @cerbos/cerbos-linux-x64) serving the policy
// under bench/peers/cerbos/, which expresses Bulkhead's rules
// (policies/bulkhead/) as derived roles and resource-policy conditions.
//
// Cerbos does not read Bulkhead's store, so the harness precomputes every
// principal and resource attribute from the full policy input Bulkhead's own
// Decider would evaluate (the same input the OPA row sends): cerbosCheck() is
// that mapping, a pure function (test/unit/bench-cerbos-peer.test.ts).
//
// The gRPC side needs Cerbos's message types. Cerbos serves gRPC reflection,
// so nothing is vendored: ghz loads the service through reflection, and the
// agreement check and the body sizes use the descriptors fetched the same way
// (cerbosSchemas), with @bufbuild/protobuf doing the JSON <-> binary mapping.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { freePort, startServer, stopServer, waitForHttp } from "./load-tools.mjs";

export const CERBOS_METHOD = "cerbos.svc.v1.CerbosService.CheckResources";
export const CERBOS_VERSION = "0.55.0";
const CHECK_PATH = "/cerbos.svc.v1.CerbosService/CheckResources";
const BILLING_ACCESS = new Set(["full", "read_only", "none"]);

/** The Cerbos binary the devDependency ships; throws with the install command when it is missing. */
export function cerbosBinary(root) {
  const bin = join(root, "node_modules", "@cerbos", "cerbos-linux-x64", "cerbos-linux-x64");
  if (!existsSync(bin)) throw new Error(`Cerbos not found at ${bin}: run npm ci (devDependency @cerbos/cerbos-linux-x64@${CERBOS_VERSION})`);
  return bin;
}

/**
 * A CheckResourcesRequest (proto JSON) for one Bulkhead policy input
 * (src/engine/policy-input.ts): one resource, one action.
 *
 * Principal: the base role "user" (Bulkhead's rules do not depend on the actor
 * type) and the resolved facts: its tenant, membership role and status, tenant
 * status, billing access, entitlements, flags, hard limits and usage. The
 * membership becomes a derived role in Cerbos only towards the principal's own
 * tenant. Resource: kind = the action's namespace ("projects" for
 * "projects.read"), because Bulkhead decides on the action, not on the
 * resource type; attributes tenant_id, consume and role (the invited role, for
 * owner_required).
 *
 * Fails closed where the peer's policy says nothing: API-key callers and
 * impersonation sessions are not expressed (the benchmark mix has neither), so
 * such an input throws instead of being benchmarked as something else.
 */
export function cerbosCheck(input, requestId = "") {
  const ctx = input.context ?? {};
  if (ctx.api_key) throw new Error("cerbos peer: API-key principals are not expressed in bench/peers/cerbos (ADR 86)");
  if (ctx.impersonation) throw new Error("cerbos peer: impersonation sessions are not expressed in bench/peers/cerbos (ADR 86)");
  const tenant = ctx.tenant ?? {};
  const membership = ctx.membership && typeof ctx.membership === "object" ? ctx.membership : null;
  const text = (v) => (typeof v === "string" ? v : "");
  // Only hard limits that are numbers: null (or no entry) means unlimited, as in checks.rego.
  const limits = {};
  for (const [meter, limit] of Object.entries(ctx.limits ?? {})) if (typeof limit?.hard === "number") limits[meter] = limit.hard;
  const usage = {};
  for (const [meter, used] of Object.entries(ctx.usage ?? {})) if (typeof used === "number") usage[meter] = used;
  const features = {};
  for (const [flag, on] of Object.entries(ctx.features ?? {})) if (typeof on === "boolean") features[flag] = on;
  const action = text(input.action);
  const resource = input.resource ?? {};
  const attributes = resource.attributes && typeof resource.attributes === "object" ? resource.attributes : {};
  return {
    requestId,
    principal: {
      id: text(ctx.actor?.id),
      roles: ["user"],
      attr: {
        tenant_id: text(tenant.id),
        role: membership ? text(membership.role) : "",
        membership_status: membership ? text(membership.status) : "",
        tenant_status: text(tenant.status),
        // The resolver always states it for a member; anything else is the strictest level.
        billing_access: BILLING_ACCESS.has(tenant.billing_access) ? tenant.billing_access : "none",
        entitlements: Array.isArray(ctx.entitlements) ? ctx.entitlements.filter((e) => typeof e === "string") : [],
        features,
        limits,
        usage,
      },
    },
    resources: [
      {
        actions: [action],
        resource: {
          kind: action.split(".")[0],
          id: text(resource.id),
          attr: {
            tenant_id: text(resource.tenant_id),
            consume: typeof input.consume === "number" && input.consume > 0 ? input.consume : 1,
            role: text(attributes.role),
          },
        },
      },
    ],
  };
}

/** Cerbos's answer for the one action of a cerbosCheck() request: true only for EFFECT_ALLOW. */
export function cerbosAllows(request, response) {
  const action = request.resources[0].actions[0];
  return response?.results?.[0]?.actions?.[action] === "EFFECT_ALLOW";
}

/**
 * Starts `cerbos server` with the committed config on free loopback ports,
 * through the harness's startServer (pinned to `cores`: taskset -c), and
 * waits for its health endpoint. `stop()` ends it (SIGTERM, then SIGKILL).
 */
export async function startCerbos({ root, cores = null }) {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const peer = join(root, "bench", "peers", "cerbos");
  const server = await startServer({
    command: cerbosBinary(root),
    args: [
      "server", `--config=${join(peer, "config.yaml")}`,
      `--set=server.grpcListenAddr=127.0.0.1:${grpcPort}`, `--set=server.httpListenAddr=127.0.0.1:${httpPort}`,
      `--set=storage.disk.directory=${join(peer, "policies")}`, "--log-level=error",
    ],
    cores,
    ready: null, // Cerbos prints nothing at log level error; readiness is its health endpoint
  });
  await waitForHttp(`http://127.0.0.1:${httpPort}/_cerbos/health`);
  return { server, address: `127.0.0.1:${grpcPort}`, stop: () => stopServer(server) };
}

/**
 * CheckResources request and response schemas, from the server's own gRPC
 * reflection (grpc.reflection.v1): the file declaring the service and every
 * file it depends on.
 */
export async function cerbosSchemas(address) {
  const reflectionDir = dirname(createRequire(import.meta.url).resolve("@grpc/reflection/package.json"));
  const definition = protoLoader.loadSync(join(reflectionDir, "build", "proto", "grpc", "reflection", "v1", "reflection.proto"), { keepCase: true, oneofs: true });
  const Reflection = grpc.loadPackageDefinition(definition).grpc.reflection.v1.ServerReflection;
  const client = new Reflection(address, grpc.credentials.createInsecure());
  const files = new Map();
  try {
    const call = client.ServerReflectionInfo();
    const ask = (request) => new Promise((resolve, reject) => {
      call.once("data", resolve);
      call.once("error", reject);
      call.write(request);
    });
    const take = (response) => {
      if (response.error_response) throw new Error(`cerbos reflection: ${response.error_response.error_message}`);
      for (const bytes of response.file_descriptor_response.file_descriptor_proto) {
        const file = fromBinary(FileDescriptorProtoSchema, bytes);
        files.set(file.name, file);
      }
    };
    take(await ask({ file_containing_symbol: "cerbos.svc.v1.CerbosService" }));
    for (let missing = pending(files); missing.length; missing = pending(files)) {
      for (const name of missing) take(await ask({ file_by_filename: name }));
    }
    call.end();
  } finally {
    client.close();
  }
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: dependenciesFirst(files) }));
  const request = registry.getMessage("cerbos.request.v1.CheckResourcesRequest");
  const response = registry.getMessage("cerbos.response.v1.CheckResourcesResponse");
  if (!request || !response) throw new Error("cerbos reflection: CheckResources request/response types not found");
  return {
    encode: (json) => toBinary(request, fromJson(request, json)),
    decode: (bytes) => toJson(response, fromBinary(response, bytes)),
  };
}

/** A FileDescriptorSet is read in order: every file after the files it imports. */
function dependenciesFirst(files) {
  const out = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const file = files.get(name);
    for (const d of file.dependency) visit(d);
    out.push(file);
  };
  for (const name of files.keys()) visit(name);
  return out;
}

const pending = (files) => [...new Set([...files.values()].flatMap((f) => f.dependency))].filter((d) => !files.has(d));

/**
 * Sends every request to Cerbos over gRPC (CheckResources, 16 in flight) and
 * compares its allow/deny with Bulkhead's. Returns the count and the first
 * few disagreements (request index, action, both answers).
 */
export async function cerbosAgreement({ address, schemas, requests, expected, examples = 5 }) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const check = (request) => new Promise((resolve, reject) => {
    client.makeUnaryRequest(CHECK_PATH, (json) => Buffer.from(schemas.encode(json)), (bytes) => schemas.decode(bytes), request, (error, answer) => (error ? reject(error) : resolve(answer)));
  });
  const found = [];
  let count = 0;
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const i = next++;
      const cerbos = cerbosAllows(requests[i], await check(requests[i]));
      if (cerbos !== expected[i].allow) {
        count++;
        if (found.length < examples) found.push({ index: i, action: requests[i].resources[0].actions[0], bulkhead: expected[i].allow, cerbos, bulkheadReasons: expected[i].reasons });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    client.close();
  }
  return { count, examples: found };
}

/** Mean and largest encoded size (bytes) of a list of messages. */
export function bodySizes(encode, messages) {
  let total = 0;
  let max = 0;
  for (const m of messages) {
    const n = encode(m).length;
    total += n;
    if (n > max) max = n;
  }
  return { mean: messages.length ? total / messages.length : 0, max };
}
