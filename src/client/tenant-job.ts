import { status } from "@grpc/grpc-js";
import type { DeepPartial, Reason, Resource, TenantContext } from "../gen/bulkhead/v1/decision.js";
import { UNAVAILABLE_REASON, type BulkheadClient } from "./bulkhead-client.js";
import type { JobRunStore } from "./job-run-store.js";

/**
 * What a queue carries for a tenant job: who asked, in which tenant, for
 * which permission on which object, and the key that makes retries one
 * effect. It carries no context and no permissions: those are rebuilt from
 * Bulkhead when the job runs, because the actor may have lost them since.
 */
export interface TenantJobEnvelope<Payload = unknown> {
  /** The tenant the job was enqueued in. */
  tenantId: string;
  /** The actor the job acts for (a user, or a service account for scheduled work). */
  requestedBy: { actorId: string; actorType?: string };
  /** The action checked at run time, and the object it acts on (type and id only: its tenant is read from the host database when the job runs). */
  permission: { action: string; resource: { type: string; id: string } };
  /** Unique per logical job within the tenant; a retry reuses it. */
  idempotencyKey: string;
  /** Job-specific data; never trusted for tenant or permissions. */
  payload?: Payload;
}

/** Builds an envelope from the trusted context of the request that enqueues it, so tenant and actor cannot come from user input. */
export function tenantJob<Payload>(
  context: Pick<TenantContext, "tenantId" | "actorId" | "actorType">,
  job: { action: string; resource: { type: string; id: string }; idempotencyKey: string; payload?: Payload },
): TenantJobEnvelope<Payload> {
  return validateEnvelope({
    tenantId: context.tenantId,
    requestedBy: { actorId: context.actorId, actorType: context.actorType },
    permission: { action: job.action, resource: { type: job.resource.type, id: job.resource.id } },
    idempotencyKey: job.idempotencyKey,
    ...(job.payload !== undefined && { payload: job.payload }),
  });
}

/** What the job handler receives: only what was rebuilt at run time, plus the payload. */
export interface TenantJobRun<Payload> {
  /** The actor's context as of now (ResolveContext with source `job`), not as of enqueueing. */
  context: TenantContext;
  /** The object as the host database holds it now, with its real tenant. */
  resource: DeepPartial<Resource>;
  /** The decision that allowed the run (its id is in the sidecar's decision log). */
  decisionId: string;
  payload: Payload | undefined;
}

/** A job Bulkhead refused at run time, given to `onDenied` (the sidecar's decision log holds the same decision). */
export interface TenantJobDenial {
  envelope: TenantJobEnvelope<unknown>;
  reasons: Reason[];
  /** The sidecar's decision id; empty when no decision was made (the object does not exist, or the actor is no longer a member). */
  decisionId: string;
}

/** How a run ended; `duplicate` and `in_progress` ran nothing. */
export type TenantJobOutcome<Result> =
  | { status: "done"; result: Result }
  | { status: "denied"; reasons: Reason[]; decisionId: string }
  | { status: "duplicate" | "in_progress" };

/** What {@link runTenantJob} needs besides the envelope and the handler. */
export interface RunTenantJobOptions {
  client: BulkheadClient;
  /** Records runs per tenant and key (see {@link SqliteJobRunStore}). */
  runs: JobRunStore;
  /**
   * Reads the object from the host database by type and id, unscoped, and
   * returns it with the tenant that really owns it (`undefined`: no such
   * object). The check then sees another tenant's object as `wrong_tenant`.
   */
  loadResource(resource: { type: string; id: string }): DeepPartial<Resource> | undefined | Promise<DeepPartial<Resource> | undefined>;
  /** Hears every denial (the host's own audit or alerting). Its errors are not swallowed. */
  onDenied?(denial: TenantJobDenial): void | Promise<void>;
  /** Epoch ms for run records (default `Date.now`). */
  now?: () => number;
}

/** Bulkhead did not answer: nothing ran, the claim was given back, and the queue should retry later. */
export class TenantJobUnavailableError extends Error {
  constructor(readonly reasons: Reason[]) {
    super(`bulkhead: the job's permission could not be checked: ${reasons[0]?.message ?? "no answer"}`);
    this.name = "TenantJobUnavailableError";
  }
}

/**
 * Runs a tenant job once, with the permission re-checked now:
 * 1. claims `(tenantId, idempotencyKey)`: a finished or running job is skipped;
 * 2. loads the object and checks `permission.action` on it for `requestedBy`
 *    in `tenantId` (source `job`); a deny is logged by the sidecar, passed to
 *    `onDenied`, recorded, and the handler never runs;
 * 3. rebuilds the actor's context with ResolveContext and hands the handler
 *    only that, the reloaded object and the payload.
 * Bulkhead not answering throws {@link TenantJobUnavailableError}; a handler
 * error is rethrown; both give the claim back for the queue's retry.
 */
export async function runTenantJob<Payload, Result>(
  envelope: TenantJobEnvelope<Payload>,
  handler: (run: TenantJobRun<Payload>) => Result | Promise<Result>,
  options: RunTenantJobOptions,
): Promise<TenantJobOutcome<Result>> {
  const job = validateEnvelope(envelope);
  const now = options.now ?? Date.now;
  const claim = await options.runs.claim(job.tenantId, job.idempotencyKey, now());
  if (claim !== "claimed") return { status: claim === "running" ? "in_progress" : "duplicate" };
  let finished = false;
  try {
    const allowed = await authorize(job, options);
    if ("reasons" in allowed) {
      await options.runs.finish(job.tenantId, job.idempotencyKey, "denied", now());
      finished = true;
      await options.onDenied?.({ envelope: job, reasons: allowed.reasons, decisionId: allowed.decisionId });
      return { status: "denied", reasons: allowed.reasons, decisionId: allowed.decisionId };
    }
    const result = await handler({ ...allowed, payload: job.payload });
    await options.runs.finish(job.tenantId, job.idempotencyKey, "done", now());
    finished = true;
    return { status: "done", result };
  } finally {
    if (!finished) await options.runs.release(job.tenantId, job.idempotencyKey);
  }
}

type Authorized = Omit<TenantJobRun<never>, "payload">;

/** Load, check, rebuild: an allow is a context; every other outcome is a denial or a throw. */
async function authorize(job: TenantJobEnvelope<unknown>, options: RunTenantJobOptions): Promise<Authorized | { reasons: Reason[]; decisionId: string }> {
  const resource = await options.loadResource(job.permission.resource);
  if (!resource) return { reasons: [{ code: "resource_not_found", message: "the job's object no longer exists", details: {} }], decisionId: "" };
  const principal = { tenantId: job.tenantId, actorId: job.requestedBy.actorId, actorType: job.requestedBy.actorType ?? "", source: "job", requestId: `job:${job.idempotencyKey}` };
  const answer = await options.client.check({ principal, action: job.permission.action, resource });
  if (answer.reasons.some((r) => r.code === UNAVAILABLE_REASON)) throw new TenantJobUnavailableError(answer.reasons);
  if (!answer.allow) return { reasons: answer.reasons, decisionId: answer.decisionId };
  try {
    const context = await options.client.resolveContext({ principal });
    return { context, resource, decisionId: answer.decisionId };
  } catch (error) {
    // Removed between the check and now: the same answer as any non-member.
    if ((error as { code?: unknown })?.code === status.NOT_FOUND) return { reasons: [{ code: "not_a_member", message: "no membership for this principal", details: {} }], decisionId: "" };
    throw new TenantJobUnavailableError([{ code: UNAVAILABLE_REASON, message: String((error as Error)?.message ?? error), details: {} }]);
  }
}

/** Rejects an envelope a queue mangled, naming the field; a bad envelope never runs. */
function validateEnvelope<P>(envelope: TenantJobEnvelope<P>): TenantJobEnvelope<P> {
  const fields: [string, unknown][] = [
    ["tenantId", envelope?.tenantId],
    ["requestedBy.actorId", envelope?.requestedBy?.actorId],
    ["permission.action", envelope?.permission?.action],
    ["permission.resource.type", envelope?.permission?.resource?.type],
    ["permission.resource.id", envelope?.permission?.resource?.id],
    ["idempotencyKey", envelope?.idempotencyKey],
  ];
  for (const [field, value] of fields) {
    if (typeof value !== "string" || value.trim() === "") throw new TypeError(`tenant job: ${field} is required (a non-empty string)`);
  }
  return envelope;
}
