import { invalidArgument } from "../errors.js";
import { checkId, requireId } from "../validation.js";

/** Most flags one evaluation may name: a bulk call is for a host's flags, not a scan. */
export const MAX_FLAG_KEYS = 200;

export interface FlagQuery {
  tenantId: string;
  actorId: string | undefined;
  keys: string[];
}

/** One validation for FlagService and OFREP: the tenant is required, never defaulted. */
export function validateFlagQuery(input: { tenantId?: string; actorId?: string; keys?: readonly string[] }, fields: { tenant: string; actor: string; keys: string }): FlagQuery {
  const tenantId = requireId(input.tenantId, fields.tenant);
  const actorId = input.actorId ? input.actorId : undefined;
  if (actorId !== undefined) checkId(actorId, fields.actor);
  const keys = [...(input.keys ?? [])];
  if (keys.length > MAX_FLAG_KEYS) throw invalidArgument(fields.keys, `names at most ${MAX_FLAG_KEYS} flags`);
  for (const key of keys) checkId(key, fields.keys);
  return { tenantId, actorId, keys };
}
