import type { Metadata, ServerUnaryCall, ServerWritableStream } from "@grpc/grpc-js";
import { requireCapability, type AdminActor } from "../../audit/audited-write.js";
import {
  oneOf, optionalTime, validateEffect, validateIdList, validateMembership, validateMembershipList, validateName, validatePlan,
  validateReason, validateTenant, validateUser,
} from "../../directory/admin-input.js";
import type { DirectoryAdmin } from "../../directory/directory-admin.js";
import type { TenantAdmin } from "../../directory/tenant-admin.js";
import type { CommercialAdmin } from "../../entitlements/commercial-admin.js";
import type { AccessAdmin } from "../../identity/access-admin.js";
import { DEFAULT_UNUSED_DAYS, flagChange, type FlagAdmin } from "../../flags/flag-admin.js";
import { validateFlagJson } from "../../flags/flag-validation.js";
import type { AdminAuth } from "../../identity/admin-auth.js";
import type { BillingAdmin } from "../../billing/billing-admin.js";
import { apiKeyState, type ApiKey } from "../../identity/api-keys.js";
import { STAFF_ROLES, type AdminCapability, type AdminCaller } from "../../identity/staff-roles.js";
import type { AdminServiceServer, ApiKeyInfo, Change, RequestApprovalRequest, WatchChangesRequest } from "../../gen/bulkhead/v1/admin.js";
import type { ChangeFeed } from "../../store/change-feed.js";
import type { DecisionFilter, DecisionView } from "../../audit/decision-query.js";
import type { DecisionAccess } from "../../audit/decision-access.js";
import { checkId, requireId } from "../../validation.js";
import { invalidArgument } from "../../errors.js";
import { APPROVAL_ACTION, approvalAction, type ApprovableChange, type Approval } from "../../identity/approvals.js";
import { breakGlassStatus } from "../../identity/break-glass.js";
import { planChange } from "../../entitlements/commercial-admin.js";
import { userChange } from "../../directory/directory-admin.js";
import { bearerToken, CallerAuth } from "./call-guard.js";
import { pollStream } from "./poll-stream.js";
import { unary } from "./unary.js";
import { tracedUnary } from "./traced-unary.js";
import { currentCallSpan, TRACING_OFF, type Tracing } from "../../telemetry/tracing.js";

export interface AdminHandlerDeps {
  tenants: TenantAdmin;
  directory: DirectoryAdmin;
  commercial: CommercialAdmin;
  access: AccessAdmin;
  flags: FlagAdmin;
  billing: BillingAdmin;
  auth: AdminAuth;
  changes: ChangeFeed;
  /** QueryDecisions' audited read (ADR 90): every query leaves an admin_audit row. */
  decisionAccess: DecisionAccess;
  reasonCodes: readonly string[];
  now: () => number;
  revision: () => number;
  pollMs?: number;
}

/** ListBillingEvents' page: the console's tenant page shows the latest few. */
const DEFAULT_BILLING_EVENTS = 20;
const MAX_BILLING_EVENTS = 200;

/** AdminService authenticates per call (AdminAuth), so the shared unary wrapper's caller check is off. */
const NO_CALLER_TOKENS = new CallerAuth([]);

/**
 * AdminService: each RPC names the capability it needs; the caller comes from
 * the bearer token, the reason from the request. Finer rules (billing fields,
 * all_tenants, approvals, whose session) live in the use cases.
 */
export function adminHandlers(deps: AdminHandlerDeps, tracing: Tracing = TRACING_OFF): AdminServiceServer {
  const { tenants, directory, commercial, access } = deps;
  /** Authenticates first; a shared credential (bootstrap, sync) must also name who is behind it. */
  const callerOf = (metadata: Metadata): AdminCaller => {
    const named = metadata.get("bulkhead-actor")[0];
    const operator = typeof named === "string" ? named : "";
    const caller = deps.auth.authenticate(bearerToken(metadata), operator);
    if (caller.kind !== "staff") {
      if (!operator) throw invalidArgument("bulkhead-actor", `the ${caller.kind} credential is shared: name the person or system behind the call`);
      checkId(operator, "bulkhead-actor");
    }
    return caller;
  };
  /** A read: authenticated and capable. */
  const read = <Req, Res>(capability: AdminCapability | AdminCapability[], what: string, handler: (r: Req, caller: AdminCaller) => Res | Promise<Res>) =>
    unary(NO_CALLER_TOKENS, (r: Req, call: ServerUnaryCall<Req, Res>) => {
      const caller = callerOf(call.metadata);
      requireCapability(caller, capability, what);
      return handler(r, caller);
    });
  /** A write: also a reason that starts with a configured reason code; traced (who changed what, when, for which tenant). */
  const write = <Req extends { reason: string }, Res>(capability: AdminCapability | AdminCapability[], what: string, handler: (r: Req, by: AdminActor) => Res | Promise<Res>) =>
    tracedUnary(tracing, read<Req, Res>(capability, what, (r, caller) => {
      const reason = validateReason(r.reason, deps.reasonCodes);
      if (tracing.enabled) currentCallSpan().set(adminWriteAttributes(r, caller, reason));
      return handler(r, { caller, reason, source: "admin_api" });
    }));
  const tenantOf = (r: { tenantId: string }) => requireId(r.tenantId, "tenant_id");
  const global = (r: { allTenants: boolean; approvalId: string }) => ({ allTenants: r.allTenants, approvalId: r.approvalId });
  return {
    putTenant: write(["tenants.write", "billing.write"], "write tenants", (r, by) => tenants.putTenant(validateTenant({ ...r, id: r.tenantId }), by).then(toWrite)),
    getTenant: read("tenants.read", "read tenants", (r) => {
      const t = tenants.getTenant(tenantOf(r));
      return {
        tenantId: t.id, slug: t.slug, name: t.name, status: t.status, planCode: t.planCode, billingStatus: t.billingStatus, region: t.region,
        isolationTier: t.isolationTier, tags: t.tags, memberCount: t.memberCount, storeRevision: deps.revision(),
      };
    }),
    searchTenants: read("tenants.read", "search tenants", (r) => {
      if (r.query) checkId(r.query, "query");
      return { tenants: tenants.searchTenants(r.query, r.limit).map((t) => ({ tenantId: t.id, slug: t.slug, status: t.status })) };
    }),
    deleteTenant: write("tenants.delete", "delete tenants", async (r, by) => {
      const result = await tenants.deleteTenant(tenantOf(r), r.confirmSlug, by);
      return { storeRevision: result.revision, apiKeysRevoked: result.apiKeysRevoked, impersonationsEnded: result.impersonationsEnded };
    }),

    putUser: write("directory.write", "write users", (r, by) => directory.putUser(tenantOf(r), validateUser(r), global(r), by).then(toWrite)),
    putMembership: write("directory.write", "write memberships", (r, by) =>
      directory.putMembership(tenantOf(r), validateMembership(r.membership), by).then(toWrite),
    ),
    removeMembership: write("directory.write", "write memberships", (r, by) =>
      directory.removeMembership(tenantOf(r), requireId(r.actorId, "actor_id"), by).then(toWrite),
    ),
    syncMemberships: write("directory.write", "sync memberships", async (r, by) => {
      const result = await directory.syncMemberships(tenantOf(r), validateMembershipList(r.memberships), by);
      return { storeRevision: result.revision, added: result.added, updated: result.updated, removed: result.removed };
    }),
    putCustomRole: write("directory.write", "write custom roles", (r, by) =>
      directory.putCustomRole(tenantOf(r), requireId(r.name, "name"), validateIdList(r.permissions, "permissions"), by).then(toWrite),
    ),
    deleteCustomRole: write("directory.write", "delete custom roles", (r, by) => directory.deleteCustomRole(tenantOf(r), requireId(r.name, "name"), by).then(toWrite)),

    putPlan: write("plans.write", "change the plan catalog", (r, by) => commercial.putPlan(validatePlan(r), global(r), by).then(toWrite)),
    putOverride: write("billing.write", "override entitlements", async (r, by) => {
      const result = await commercial.putOverride(
        {
          tenantId: tenantOf(r), entitlement: requireId(r.entitlement, "entitlement"), effect: validateEffect(r.effect),
          expiresAt: optionalTime(r.expiresAt, "expires_at"), reason: by.reason, author: by.caller.actor,
        },
        by,
      );
      return { storeRevision: result.revision, overrideId: result.overrideId };
    }),
    removeOverride: write("billing.write", "remove overrides", (r, by) => {
      if (r.overrideId <= 0) throw invalidArgument("override_id", "is required");
      return commercial.removeOverride(tenantOf(r), r.overrideId, by).then(toWrite);
    }),

    putFlag: write("flags.write", "write flags", (r, by) => deps.flags.putFlag(validateFlagJson(r.flagJson), r.approvalId, by).then(toWrite)),
    deleteFlag: write("flags.write", "delete flags", (r, by) => deps.flags.deleteFlag(requireId(r.key, "key"), by).then(toWrite)),
    setKillSwitch: write("flags.kill", "throw kill switches", (r, by) => deps.flags.setKillSwitch(requireId(r.key, "key"), r.killed, by).then(toWrite)),
    listFlags: read(["flags.write", "flags.kill"], "list flags", (r) => {
      const unusedDays = r.unusedDays === 0 ? DEFAULT_UNUSED_DAYS : r.unusedDays;
      if (unusedDays > 3650) throw invalidArgument("unused_days", "must be from 1 to 3650 (0 = the default, 30)");
      const flags = deps.flags.list(deps.now(), unusedDays).filter((f) => !r.staleOnly || f.staleReasons.length > 0);
      return { flags: flags.map((f) => ({ key: f.flag.key, flagJson: JSON.stringify(f.flag), staleReasons: f.staleReasons })), storeRevision: deps.revision() };
    }),

    replayBillingEvent: write("billing.write", "replay billing events", async (r, by) => {
      const result = await deps.billing.replayEvent(requireId(r.eventId, "event_id"), by);
      return { storeRevision: result.revision, outcome: result.outcome, tenantId: result.tenantId ?? "" };
    }),
    reconcileBilling: write("billing.write", "reconcile billing", async (r, by) => {
      const report = await deps.billing.reconcile({ dryRun: r.dryRun, now: deps.now() }, by);
      return {
        checked: report.checked, unmapped: report.unmapped, applied: report.applied, storeRevision: report.revision ?? 0,
        drift: report.drift.map((d) => ({ subscriptionId: d.subscriptionId, tenantId: d.tenantId, changesJson: JSON.stringify(d.changes) })),
      };
    }),
    recalculateEntitlements: write("billing.write", "recalculate entitlements", (r, by) => deps.billing.recalculateEntitlements(tenantOf(r), by).then(toWrite)),
    listBillingEvents: read("tenants.read", "list billing events", (r) => {
      if (r.limit > MAX_BILLING_EVENTS) throw invalidArgument("limit", `must be at most ${MAX_BILLING_EVENTS} (0 = ${DEFAULT_BILLING_EVENTS})`);
      const events = deps.billing.listEvents(tenantOf(r), r.limit === 0 ? DEFAULT_BILLING_EVENTS : r.limit);
      return { events: events.map((e) => ({ eventId: e.eventId, type: e.type, outcome: e.outcome, created: e.created })) };
    }),

    queryDecisions: read("audit.read", "query the decision log", async (r, caller) => {
      const filter: DecisionFilter = {
        tenantId: tenantOf(r),
        actorId: r.actorId ? requireId(r.actorId, "actor_id") : undefined,
        action: r.action ? requireId(r.action, "action") : undefined,
        decisionId: r.decisionId ? requireId(r.decisionId, "decision_id") : undefined,
        reason: r.reason ? requireId(r.reason, "reason") : undefined,
        result: r.result ? oneOf(r.result, ["allow", "deny"] as const, "result") : undefined,
        since: optionalTime(r.since, "since") ?? undefined,
        until: optionalTime(r.until, "until") ?? undefined,
      };
      const page = await deps.decisionAccess.query(filter, { size: r.pageSize, token: r.pageToken }, { caller, source: "admin_api" });
      return { decisions: page.decisions.map(decisionRecordView), nextPageToken: page.nextPageToken };
    }),

    createApiKey: write("api_keys.write", "create API keys", async (r, by) => {
      const created = await access.createApiKey(
        {
          tenantId: tenantOf(r), name: validateName(r.name, "name"), scopes: validateIdList(r.scopes, "scopes"),
          expiresInDays: r.expiresInDays, ratePerMinute: r.ratePerMinute || 600,
        },
        by,
      );
      return { keyId: created.key.id, apiKey: created.raw, storeRevision: created.revision };
    }),
    rotateApiKey: write("api_keys.write", "rotate API keys", async (r, by) => {
      const rotated = await access.rotateApiKey(tenantOf(r), requireId(r.keyId, "key_id"), r.overlapSeconds, by);
      return { keyId: rotated.key.id, apiKey: rotated.raw, storeRevision: rotated.revision };
    }),
    revokeApiKey: write("api_keys.write", "revoke API keys", async (r, by) => toWrite(await access.revokeApiKey(tenantOf(r), requireId(r.keyId, "key_id"), by))),
    listApiKeys: read("tenants.read", "list API keys", (r) => ({ keys: access.listApiKeys(tenantOf(r)).map((k) => keyInfo(k, deps.now())) })),

    putStaff: write("staff.write", "manage staff", async (r, by) => {
      const member = {
        id: requireId(r.staffId, "staff_id"), name: validateName(r.name, "name"), role: oneOf(r.role, STAFF_ROLES, "role"),
        status: oneOf(r.status, ["active", "disabled"] as const, "status", "active"),
      };
      const result = await access.putStaff(member, r.issueToken, by);
      return { storeRevision: result.revision, token: result.token ?? "" };
    }),
    requestApproval: write("approvals", "request approvals", async (r, by) => {
      const change = approvableChange(r);
      if (r.action) {
        if (!APPROVAL_ACTION.test(r.action)) throw invalidArgument("action", "must be the action a refused global write named, e.g. plan.put:pro@<64 hex digits>");
        const named = approvalAction(change.verb, change.object, change.content);
        if (r.action !== named) throw invalidArgument("action", `names other content than the change sent (the change is '${named}')`);
      }
      return toApproval(await access.requestApproval(change, by));
    }),
    approve: write("approvals", "approve global actions", async (r, by) => toApproval(await access.approve(requireId(r.approvalId, "approval_id"), by))),
    getApproval: read("approvals", "read approvals", (r) => toApproval(access.getApproval(requireId(r.approvalId, "approval_id")))),
    // AccessAdmin checks break_glass and the write's own capability again, for the console too.
    breakGlass: write("break_glass", "break glass", async (r, by) => {
      const opened = await access.breakGlass(approvableChange(r), r.justification, r.ttlSeconds, by);
      return { ...toApproval(opened.grant), storeRevision: opened.revision };
    }),
    listBreakGlass: read(["break_glass", "audit.read"], "read the break-glass log", (r) => {
      const limit = r.limit === 0 ? 200 : r.limit;
      if (limit > 500) throw invalidArgument("limit", "must be from 1 to 500 (0 for 200)");
      return { grants: access.breakGlassLog(limit).map((g) => toBreakGlassGrant(g, deps.now())) };
    }),
    startImpersonation: write("impersonate", "impersonate members", async (r, by) => {
      const started = await access.startImpersonation(tenantOf(r), requireId(r.asActorId, "as_actor_id"), r.ttlSeconds, by);
      return { sessionId: started.session.id, expiresAt: iso(started.session.expiresAt), storeRevision: started.revision };
    }),
    endImpersonation: write("impersonate", "end impersonation sessions", async (r, by) =>
      toWrite(await access.endImpersonation(tenantOf(r), requireId(r.sessionId, "session_id"), by)),
    ),

    watchChanges: (call) => watchChanges(deps, callerOf, call),
  };
}

/** RFC 3339, or "" for no time (proto3 strings have no null). */
const iso = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString());

const toWrite = (r: { revision: number; changed: boolean }) => ({ storeRevision: r.revision, changed: r.changed });

const toApproval = (a: Approval) => ({
  approvalId: a.id, action: a.action, requestedBy: a.requestedBy, approvedBy: a.approvedBy ?? "", expiresAt: iso(a.expiresAt),
  contentJson: a.contentJson, reason: a.reason, breakGlass: a.breakGlass, storeRevision: 0,
});

const toBreakGlassGrant = (g: Approval, now: number) => ({
  grant: toApproval(g), justification: g.justification, createdAt: iso(g.createdAt), usedAt: iso(g.usedAt), expiredAt: iso(g.expiredAt), status: breakGlassStatus(g, now),
});

/** The change an approval is asked for, validated exactly as the write itself will validate it. */
function approvableChange(r: Pick<RequestApprovalRequest, "putPlan" | "putUser" | "putFlag">): ApprovableChange {
  if (r.putPlan) return planChange(validatePlan(r.putPlan));
  if (r.putUser) return userChange(validateUser(r.putUser));
  if (r.putFlag) return flagChange(validateFlagJson(r.putFlag.flagJson));
  throw invalidArgument("change", "name the change to approve (put_plan, put_user or put_flag), so the approver can read what they approve");
}

function keyInfo(k: ApiKey, now: number): ApiKeyInfo {
  const state = apiKeyState(k, now);
  return { keyId: k.id, name: k.name, scopes: k.scopes, state, expiresAt: iso(k.expiresAt), retiresAt: iso(k.retiresAt) };
}

/** Every change after `after_revision` in revision order, then new ones as they commit. */
function watchChanges(deps: AdminHandlerDeps, callerOf: (m: Metadata) => AdminCaller, call: ServerWritableStream<WatchChangesRequest, Change>): void {
  pollStream(call, {
    auth: {
      verify: (metadata) => requireCapability(callerOf(metadata), "changes.watch", "watch changes"),
    },
    validate: () => call.request.tenantId && checkId(call.request.tenantId, "tenant_id"),
    start: call.request.afterRevision,
    next: (cursor) => deps.changes.after(cursor, call.request.tenantId),
    cursorOf: (c) => c.revision,
    toMessage: (c) => ({ revision: c.revision, tenantId: c.tenantId ?? "", kind: c.kind }),
    ...(deps.pollMs !== undefined && { pollMs: deps.pollMs }),
  });
}

function decisionRecordView(d: DecisionView) {
  return {
    decisionId: d.decision_id, at: d.at, tenantId: d.tenant_id, actorId: d.actor_id, actorType: d.actor_type, action: d.action, resourceType: d.resource_type,
    resourceId: d.resource_id, resourceTenantId: d.resource_tenant_id, allow: d.allow, reasons: d.reasons, policyRevision: d.policy_revision,
    storeRevision: d.store_revision, requestId: d.request_id, source: d.source, impersonationJson: d.impersonation ? JSON.stringify(d.impersonation) : "",
  };
}

/**
 * An admin write's span: the tenant it targets (when the request names one),
 * who made it and the reason code. Not the reason's free text, and never the
 * bearer token (it is in the metadata, which no attribute copies).
 */
function adminWriteAttributes(request: object, caller: AdminCaller, reason: string) {
  return {
    "bulkhead.tenant_id": "tenantId" in request && typeof request.tenantId === "string" && request.tenantId ? request.tenantId : undefined,
    "bulkhead.actor": caller.actor,
    "bulkhead.admin.reason_code": reason.split(":", 1)[0]!.trim(),
  };
}
