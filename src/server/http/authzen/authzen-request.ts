import { invalidArgument } from "../../../errors.js";

/**
 * AuthZEN 1.0 request bodies, read as the spec allows: every entity field
 * optional at this stage (batch items inherit the rest), unknown fields
 * ignored, wrong types refused with the field's AuthZEN name.
 */
export type Properties = Record<string, unknown>;

export interface EntityParts {
  type?: string;
  id?: string;
  properties?: Properties;
}

export interface ActionParts {
  name?: string;
  properties?: Properties;
}

/** The four parts of an evaluation, each absent when the request left it out. */
export interface EvaluationParts {
  subject?: EntityParts;
  action?: ActionParts;
  resource?: EntityParts;
  context?: Properties;
}

export interface Entity {
  type: string;
  id: string;
  properties: Properties;
}

/** An evaluation with every required field present. */
export interface CompleteEvaluation {
  subject: Entity;
  action: { name: string; properties: Properties };
  resource: Entity;
  context: Properties;
}

export const SEMANTICS = ["execute_all", "deny_on_first_deny", "permit_on_first_permit"] as const;
export type EvaluationsSemantic = (typeof SEMANTICS)[number];

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads subject, action, resource and context from `body`; `prefix` names an item (`evaluations[2].`). */
export function readParts(body: Record<string, unknown>, prefix = ""): EvaluationParts {
  const parts: EvaluationParts = {};
  if (body.subject !== undefined) parts.subject = readEntity(body.subject, `${prefix}subject`);
  if (body.resource !== undefined) parts.resource = readEntity(body.resource, `${prefix}resource`);
  if (body.action !== undefined) parts.action = readAction(body.action, `${prefix}action`);
  if (body.context !== undefined) parts.context = readProperties(body.context, `${prefix}context`);
  return parts;
}

function readEntity(value: unknown, field: string): EntityParts {
  if (!isObject(value)) throw invalidArgument(field, "must be an object");
  const entity: EntityParts = {};
  if (value.type !== undefined) entity.type = readString(value.type, `${field}.type`);
  if (value.id !== undefined) entity.id = readString(value.id, `${field}.id`);
  if (value.properties !== undefined) entity.properties = readProperties(value.properties, `${field}.properties`);
  return entity;
}

function readAction(value: unknown, field: string): ActionParts {
  if (!isObject(value)) throw invalidArgument(field, "must be an object");
  const action: ActionParts = {};
  if (value.name !== undefined) action.name = readString(value.name, `${field}.name`);
  if (value.properties !== undefined) action.properties = readProperties(value.properties, `${field}.properties`);
  return action;
}

function readString(value: unknown, field: string): string {
  if (typeof value !== "string") throw invalidArgument(field, "must be a string");
  return value;
}

function readProperties(value: unknown, field: string): Properties {
  if (!isObject(value)) throw invalidArgument(field, "must be an object");
  return value;
}

/**
 * A batch item over the top-level defaults. An entity the item names
 * replaces the default entity whole (its properties are not merged), except
 * that a missing `type`, `id` or `name` falls back to the default's: the
 * certification scenario's entity-level replacement (c-3-2-7).
 */
export function mergeItem(defaults: EvaluationParts, item: EvaluationParts): EvaluationParts {
  const entity = (own: EntityParts | undefined, inherited: EntityParts | undefined): EntityParts | undefined => {
    if (!own) return inherited;
    const type = own.type ?? inherited?.type;
    const id = own.id ?? inherited?.id;
    return { ...(type !== undefined && { type }), ...(id !== undefined && { id }), ...(own.properties && { properties: own.properties }) };
  };
  const merged: EvaluationParts = {};
  const subject = entity(item.subject, defaults.subject);
  const resource = entity(item.resource, defaults.resource);
  const name = item.action ? (item.action.name ?? defaults.action?.name) : undefined;
  const action = item.action ? { ...(name !== undefined && { name }), ...(item.action.properties && { properties: item.action.properties }) } : defaults.action;
  const context = item.context ?? defaults.context;
  if (subject) merged.subject = subject;
  if (resource) merged.resource = resource;
  if (action) merged.action = action;
  if (context) merged.context = context;
  return merged;
}

/** Which identifier fields a request must carry: all of them for an evaluation, fewer for a search. */
export interface Required {
  subjectId: boolean;
  action: boolean;
  resourceId: boolean;
  resource: boolean;
}

export const EVALUATION_FIELDS: Required = { subjectId: true, action: true, resourceId: true, resource: true };

/** Throws INVALID_ARGUMENT naming the first missing field. */
export function requireFields(parts: EvaluationParts, required: Required, prefix = ""): void {
  const need = (present: unknown, field: string) => {
    if (present === undefined || present === "") throw invalidArgument(`${prefix}${field}`, "is required");
  };
  need(parts.subject, "subject");
  need(parts.subject!.type, "subject.type");
  if (required.subjectId) need(parts.subject!.id, "subject.id");
  if (required.action) {
    need(parts.action, "action");
    need(parts.action!.name, "action.name");
  }
  if (required.resource) {
    need(parts.resource, "resource");
    need(parts.resource!.type, "resource.type");
    if (required.resourceId) need(parts.resource!.id, "resource.id");
  }
}

/** The parts once requireFields(EVALUATION_FIELDS) has passed. */
export function complete(parts: EvaluationParts): CompleteEvaluation {
  const entity = (e: EntityParts): Entity => ({ type: e.type!, id: e.id!, properties: e.properties ?? {} });
  return {
    subject: entity(parts.subject!),
    action: { name: parts.action!.name!, properties: parts.action!.properties ?? {} },
    resource: entity(parts.resource!),
    context: parts.context ?? {},
  };
}

export function readSemantic(options: unknown): EvaluationsSemantic {
  if (options === undefined) return "execute_all";
  if (!isObject(options)) throw invalidArgument("options", "must be an object");
  const semantic = options.evaluations_semantic ?? "execute_all";
  if (!SEMANTICS.includes(semantic as EvaluationsSemantic)) {
    throw invalidArgument("options.evaluations_semantic", `must be one of ${SEMANTICS.join(", ")}`);
  }
  return semantic as EvaluationsSemantic;
}
