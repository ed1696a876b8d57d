import type { Decision } from "../../../decision/decider.js";
import { LIMITS, type CheckInput } from "../../../decision/check-input.js";
import type { DirectoryStore } from "../../../directory/directory-store.js";
import { wrapError } from "../../../errors.js";
import { SUBJECT_TYPES, tenantOf, toCheckInput, type AuthzenTenancy } from "./authzen-check.js";
import { complete, requireFields, type EvaluationParts } from "./authzen-request.js";
import type { SearchableResources } from "./searchable-resources.js";

export interface SearchDeps {
  decide: (input: CheckInput) => Promise<Decision>;
  directory: Pick<DirectoryStore, "memberships">;
  /** The action catalog of the policy now serving. */
  actions: () => string[];
  resources: SearchableResources;
  tenancy: AuthzenTenancy;
}

/**
 * AuthZEN search as Checks: candidates come from one tenant only (its
 * members, its registered resources, the catalog), and each is answered by
 * Check exactly as an evaluation would be, so search can never show what an
 * evaluation would deny. Any failed Check fails the whole search (closed):
 * a partial list would silently drop entities. At most LIMITS.batchSize
 * candidates are decided; pagination is not offered (the spec allows that).
 */
export async function searchSubjects(deps: SearchDeps, parts: EvaluationParts, requestId: string): Promise<{ results: { type: string; id: string }[] }> {
  requireFields(parts, { subjectId: false, action: true, resource: true, resourceId: true });
  const type = parts.subject!.type!;
  const tenantId = tenantOf(parts.subject!.properties, parts.resource!.properties, deps.tenancy);
  if (!isSubjectType(type)) return { results: [] };
  const members = store(() => deps.directory.memberships(tenantId)).filter((m) => m.actorType === type);
  const ids = await allowed(deps, members.map((m) => ({ ...parts, subject: { ...parts.subject, id: m.actorId } })), requestId, (p) => p.subject!.id!);
  return { results: ids.map((id) => ({ type, id })) };
}

export async function searchResources(deps: SearchDeps, parts: EvaluationParts, requestId: string): Promise<{ results: { type: string; id: string }[] }> {
  requireFields(parts, { subjectId: true, action: true, resource: true, resourceId: false });
  const type = parts.resource!.type!;
  const tenantId = tenantOf(parts.subject!.properties, parts.resource!.properties, deps.tenancy);
  if (!isSubjectType(parts.subject!.type!)) return { results: [] };
  // The registered record is the host's word on the resource: its properties and tenant win over the request's.
  const candidates = deps.resources.of(tenantId, type).map((r) => ({
    ...parts,
    resource: { type, id: r.id, properties: { ...parts.resource!.properties, ...r.properties, tenant_id: r.tenantId } },
  }));
  const ids = await allowed(deps, candidates, requestId, (p) => p.resource!.id!);
  return { results: ids.map((id) => ({ type, id })) };
}

export async function searchActions(deps: SearchDeps, parts: EvaluationParts, requestId: string): Promise<{ results: { name: string }[] }> {
  requireFields(parts, { subjectId: true, action: false, resource: true, resourceId: true });
  if (!isSubjectType(parts.subject!.type!)) return { results: [] };
  const candidates = deps.actions().map((name) => ({ ...parts, action: { name } }));
  const names = await allowed(deps, candidates, requestId, (p) => p.action!.name!);
  return { results: names.map((name) => ({ name })) };
}

async function allowed(deps: SearchDeps, candidates: EvaluationParts[], requestId: string, key: (p: EvaluationParts) => string): Promise<string[]> {
  const decided = candidates.slice(0, LIMITS.batchSize);
  const inputs = decided.map((p) => toCheckInput(complete(p), deps.tenancy, requestId));
  const decisions = await Promise.all(inputs.map((input) => deps.decide(input)));
  return decided.filter((_, i) => decisions[i]!.allow).map(key);
}

/** A type no actor has is an empty search (c-4-6-2), not a 400. */
function isSubjectType(type: string): boolean {
  return (SUBJECT_TYPES as readonly string[]).includes(type);
}

function store<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw wrapError("STORE_FAILED", "the store failed", error);
  }
}
