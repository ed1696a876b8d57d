import type { ServerWritableStream } from "@grpc/grpc-js";
import type { Clock } from "../../clock.js";
import type { Decider } from "../../decision/decider.js";
import { validateRevision } from "../../decision/check-input.js";
import { readEntitlementReport } from "../../entitlements/entitlement-report.js";
import type { Outbox } from "../../events/outbox.js";
import type { EntitlementServiceServer, Event, WatchEventsRequest } from "../../gen/bulkhead/v1/entitlements.js";
import type { Db } from "../../store/database.js";
import type { Stores } from "../../store/stores.js";
import type { Metering } from "../../usage/metering.js";
import type { UsageCommands } from "../../usage/usage-commands.js";
import {
  validateActual,
  validateConsume,
  validateReport,
  validateReservationRef,
  validateReserve,
} from "../../usage/usage-input.js";
import { checkId, requireId } from "../../validation.js";
import { deadlineOf, type CallerAuth } from "./call-guard.js";
import { fromEntitlementReport, fromMeterAnswer, fromOutboxEvent } from "./entitlement-mapping.js";
import { pollStream } from "./poll-stream.js";
import { unary } from "./unary.js";

export interface EntitlementHandlerDeps {
  db: Db;
  stores: Stores;
  metering: Metering;
  /** The metering writes that go through the command log (Consume, Reserve, Commit, Release, ReportUsage). */
  usage: UsageCommands;
  outbox: Outbox;
  decider: Decider;
  clock: Clock;
  /** How often WatchEvents looks for new outbox rows (other processes write them too). */
  pollMs?: number;
}

/** Thin handlers: validate, call the metering use cases, map back. */
export function entitlementHandlers(deps: EntitlementHandlerDeps, auth: CallerAuth): EntitlementServiceServer {
  return {
    getEntitlements: unary(auth, async (request, call) => {
      const tenantId = requireId(request.tenantId, "tenant_id");
      await deps.decider.awaitRevision(validateRevision(request.minRevision, "min_revision"), deadlineOf(call));
      return fromEntitlementReport(readEntitlementReport({ db: deps.db, ...deps.stores }, tenantId, deps.clock.now()));
    }),

    consume: unary(auth, async (request) => {
      const answer = await deps.usage.consume(validateConsume(request));
      return { allowed: answer.allowed, reasons: answer.reasons, ...fromMeterAnswer(answer) };
    }),

    reserve: unary(auth, async (request) => {
      const answer = await deps.usage.reserve(validateReserve(request));
      return {
        allowed: answer.allowed,
        reasons: answer.reasons,
        reservationId: answer.reservationId,
        expiresAt: answer.allowed ? new Date(answer.expiresAt) : undefined,
        reserved: answer.reserved,
        ...fromMeterAnswer(answer),
      };
    }),

    commit: unary(auth, async (request) => {
      const ref = validateReservationRef(request);
      return fromMeterAnswer(await deps.usage.commit(ref, validateActual(request.actual)));
    }),

    release: unary(auth, (request) => deps.usage.release(validateReservationRef(request))),

    reportUsage: unary(auth, (request) => deps.usage.report(validateReport(request))),

    watchEvents: (call) => watchEvents(deps, auth, call),
  };
}

/** Outbox events after `after_id`, then new ones as they commit. */
function watchEvents(deps: EntitlementHandlerDeps, auth: CallerAuth, call: ServerWritableStream<WatchEventsRequest, Event>): void {
  pollStream(call, {
    auth,
    validate: () => call.request.tenantId && checkId(call.request.tenantId, "tenant_id"),
    start: call.request.afterId,
    next: (cursor) => deps.outbox.after(cursor, call.request.tenantId),
    cursorOf: (e) => e.id,
    toMessage: fromOutboxEvent,
    ...(deps.pollMs !== undefined && { pollMs: deps.pollMs }),
  });
}
