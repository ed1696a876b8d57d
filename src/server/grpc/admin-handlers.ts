import type { Metadata, ServerWritableStream } from "@grpc/grpc-js";
import { validateMembership, validateMembershipList, validateReason, validateTenant } from "../../directory/admin-input.js";
import type { AdminActor, DirectoryAdmin } from "../../directory/directory-admin.js";
import type { AdminServiceServer, Change, WatchChangesRequest } from "../../gen/bulkhead/v1/admin.js";
import type { ChangeFeed } from "../../store/change-feed.js";
import { checkId, requireId } from "../../validation.js";
import type { CallerAuth } from "./call-guard.js";
import { pollStream } from "./poll-stream.js";
import { unary } from "./unary.js";

export interface AdminHandlerDeps {
  admin: DirectoryAdmin;
  changes: ChangeFeed;
  pollMs?: number;
}

/** The operator named in `bulkhead-actor` metadata (audited), else "admin". */
function actorOf(metadata: Metadata, reason: string): AdminActor {
  const named = metadata.get("bulkhead-actor")[0];
  const actor = typeof named === "string" && named !== "" ? named : "admin";
  checkId(actor, "bulkhead-actor");
  return { actor, reason, source: "admin_api" };
}

export function adminHandlers(deps: AdminHandlerDeps, auth: CallerAuth): AdminServiceServer {
  const { admin } = deps;
  return {
    putTenant: unary(auth, (r, call) => {
      const tenant = validateTenant({ ...r, id: r.tenantId });
      return toWrite(admin.putTenant(tenant, actorOf(call.metadata, validateReason(r.reason))));
    }),
    putMembership: unary(auth, (r, call) => {
      const tenantId = requireId(r.tenantId, "tenant_id");
      return toWrite(admin.putMembership(tenantId, validateMembership(r.membership), actorOf(call.metadata, validateReason(r.reason))));
    }),
    removeMembership: unary(auth, (r, call) => {
      const tenantId = requireId(r.tenantId, "tenant_id");
      const actorId = requireId(r.actorId, "actor_id");
      return toWrite(admin.removeMembership(tenantId, actorId, actorOf(call.metadata, validateReason(r.reason))));
    }),
    syncMemberships: unary(auth, (r, call) => {
      const tenantId = requireId(r.tenantId, "tenant_id");
      const result = admin.syncMemberships(tenantId, validateMembershipList(r.memberships), actorOf(call.metadata, validateReason(r.reason)));
      return { storeRevision: result.revision, added: result.added, updated: result.updated, removed: result.removed };
    }),
    watchChanges: (call) => watchChanges(deps, auth, call),
  };
}

const toWrite = (r: { revision: number; changed: boolean }) => ({ storeRevision: r.revision, changed: r.changed });

/** Every change after `after_revision` in revision order, then new ones as they commit. */
function watchChanges(deps: AdminHandlerDeps, auth: CallerAuth, call: ServerWritableStream<WatchChangesRequest, Change>): void {
  pollStream(call, {
    auth,
    validate: () => call.request.tenantId && checkId(call.request.tenantId, "tenant_id"),
    start: call.request.afterRevision,
    next: (cursor) => deps.changes.after(cursor, call.request.tenantId),
    cursorOf: (c) => c.revision,
    toMessage: (c) => ({ revision: c.revision, tenantId: c.tenantId ?? "", kind: c.kind }),
    ...(deps.pollMs !== undefined && { pollMs: deps.pollMs }),
  });
}
