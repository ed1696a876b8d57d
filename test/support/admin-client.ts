import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import * as messages from "../../src/gen/bulkhead/v1/admin.js";
import { AdminServiceClient } from "../../src/gen/bulkhead/v1/admin.js";
import { TEST_ADMIN_TOKEN } from "./sidecar.js";

/** Bearer metadata for AdminService; `operator` names the person behind a shared credential. */
export function adminAuth(token = TEST_ADMIN_TOKEN, operator = "usr_ops"): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  if (operator) md.set("bulkhead-actor", operator);
  return md;
}

export type AdminCall = <Res = any>(method: string, request: unknown, md?: Metadata) => Promise<Res>;

/** A real AdminService client plus a promise-returning caller by method name. */
export function adminClient(address: string, defaultMd: () => Metadata = () => adminAuth()): { client: AdminServiceClient; call: AdminCall } {
  const client = new AdminServiceClient(address, credentials.createInsecure());
  // Every request message is named <Method>Request; fromPartial fills in the proto3 defaults.
  const typeOf = (method: string) =>
    (messages as unknown as Record<string, { fromPartial(o: unknown): unknown }>)[`${method[0]!.toUpperCase()}${method.slice(1)}Request`]!;
  const call: AdminCall = (method, request, md = defaultMd()) =>
    new Promise((resolve, reject) =>
      (client as unknown as Record<string, (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: any) => void) => void>)[method]!.call(
        client, typeOf(method).fromPartial(request), md, (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
  return { client, call };
}
