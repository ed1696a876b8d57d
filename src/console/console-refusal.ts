import { BulkheadError } from "../errors.js";
import type { Html } from "./html.js";

/**
 * A refusal with the way forward: the error page shows the use case's own
 * code and message, then `help` (for a high-risk full rollout: how to ask a
 * second person, and a form that asks). Status and code stay the refusal's.
 */
export class ConsoleRefusal extends BulkheadError {
  constructor(
    refused: BulkheadError,
    readonly help: Html,
  ) {
    super(refused.code, refused.message, refused.field, { cause: refused });
  }
}
