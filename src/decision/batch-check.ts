import { BulkheadError, invalidArgument } from "../errors.js";
import { LIMITS, validateCheck, type CheckInput, type RawCheck } from "./check-input.js";
import type { Decider, Decision } from "./decider.js";
import { checkToken } from "../validation.js";
import type { CallFields } from "../log/call-fields.js";
import type { CancelSignal } from "../engine/call-window.js";

/** One BatchCheck item's answer: a decision, or why that item alone has none. */
export type BatchItem = { decision: Decision } | { error: BulkheadError; requestId: string };

/**
 * BatchCheck in domain terms (ADR 56). Every item is validated on its own: a
 * malformed item is answered with its own error and the others are decided
 * as usual, so one bad id does not cost a host the other 999 answers.
 *
 * A batch in which any item consumes is one all-or-nothing write (see
 * Decider.checkMany), and keeps that rule for bad input too: one malformed
 * item fails the whole call, naming `checks[i].<field>`, and nothing is
 * evaluated or consumed. Charging the valid items alone would turn the one
 * write the host asked for into a partial one it has to reconcile.
 */
export async function decideBatch(decider: Decider, raws: readonly RawCheck[], deadline?: number, signal?: CancelSignal, fields?: CallFields): Promise<BatchItem[]> {
  if (raws.length > LIMITS.batchSize) throw invalidArgument("checks", `at most ${LIMITS.batchSize} checks per call`);
  const validated = raws.map(validateItem);
  if (raws.some(asksToConsume)) {
    // Re-validate the first bad item with its index, so the call's error names it.
    validated.forEach((item, i) => item instanceof BulkheadError && validateCheck(raws[i]!, `checks[${i}].`));
  }
  const inputs = validated.filter((item): item is CheckInput => !(item instanceof BulkheadError));
  const decisions = inputs.length > 0 ? await decider.checkMany(inputs, deadline, signal, fields) : [];
  let next = 0;
  return validated.map((item, i) => {
    if (!(item instanceof BulkheadError)) return { decision: decisions[next++]! };
    decider.countError(item.code);
    return { error: item, requestId: echoableRequestId(raws[i]!) };
  });
}

/** The validated item, or the INVALID_ARGUMENT naming its bad field (relative to the item). */
function validateItem(raw: RawCheck): CheckInput | BulkheadError {
  try {
    return validateCheck(raw);
  } catch (error) {
    if (error instanceof BulkheadError && error.code === "REQUEST_INVALID_ARGUMENT") return error;
    throw error;
  }
}

/** Judged on the raw item: a malformed item that asked to consume still makes the batch a consuming one. */
function asksToConsume(raw: RawCheck): boolean {
  return (raw.consume ?? 0) !== 0;
}

/**
 * The item's own request_id, so a host can pair the error with its request;
 * "" when the id is itself what is wrong with the item.
 */
function echoableRequestId(raw: RawCheck): string {
  const id = raw.principal?.requestId ?? "";
  try {
    checkToken(id, "principal.request_id");
    return id;
  } catch {
    return "";
  }
}
