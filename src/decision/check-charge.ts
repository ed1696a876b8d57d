import type { Reason } from "../engine/decision-result.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import { objectBody, stringField, type CommandKind, type CommandRegistry } from "../store/store-command.js";
import { idempotentWrite } from "../usage/idempotent-write.js";
import { remaining } from "../usage/meter-state.js";
import { limitReached, type Metering } from "../usage/metering.js";
import { meterKey } from "../usage/usage-commands.js";
import type { UsageStore } from "../usage/usage-store.js";
import type { Decision } from "./decider.js";

/**
 * What a Check with consume appends in replicated mode (ADR 61): the
 * decision the policy made on this sidecar, and the charge it asks for.
 * Applying it runs no policy (another sidecar may hold another bundle): it
 * re-checks only what can have moved since, the meter and the idempotency
 * key, on the state at the entry's place in the log.
 */
export interface ChargeBody {
  tenantId: string;
  idempotencyKey: string;
  /** What makes two calls the same request (the idempotency record's hash input). */
  request: unknown;
  amount: number;
  /** The action's meter; null: the action meters nothing. */
  meter: string | null;
  decision: Decision;
}

export interface ChargeResult {
  answer: Decision;
  replayed: boolean;
  /** Whether it took units: only such an entry is worth appending. */
  charged: boolean;
}

/** What a consuming BatchCheck appends (ADR 85): its members' consuming items, in item order. */
export interface BatchChargeBody {
  items: ChargeBody[];
}

export class CheckCharges {
  private readonly kind: CommandKind<ChargeBody, ChargeResult>;
  private readonly batchKind: CommandKind<BatchChargeBody, ChargeResult[]>;

  constructor(private readonly deps: { metering: Metering; writer: RevisionWriter; usage: UsageStore; commands: CommandWriter; registry: CommandRegistry }) {
    this.kind = deps.registry.register({
      type: "check.charge",
      version: 1,
      decode: (raw) => decodeCharge(raw),
      apply: (_tx, body) => this.apply(body),
    });
    // Every item by the single Check's rules, in one entry: an item that throws
    // (a reused key) discards the whole entry, as it rolls back a single-node batch's write.
    this.batchKind = deps.registry.register({
      type: "check.charge-batch",
      version: 1,
      decode: (raw) => decodeBatch(raw),
      apply: (_tx, body) => body.items.map((item) => this.apply(item)),
    });
  }

  /**
   * Appended on the meter's subject with optimistic concurrency, like a
   * Consume, so Checks racing for a meter's last units on several sidecars
   * stay exactly at the limit. One this sidecar's state already settles (a
   * replay, a denial, nothing to charge) is answered without an entry.
   */
  async charge(body: ChargeBody): Promise<{ decision: Decision; replayed: boolean }> {
    const { result, revision } = await this.deps.commands.run(this.kind, body, {
      ...(body.meter !== null && { concurrencyKey: meterKey(body.tenantId, body.meter) }),
      settledLocally: (answer) => !answer.charged,
    });
    // A fresh decision is as of the revision the entry took (or saw, when it charged nothing); a replay keeps its own.
    return { decision: result.replayed ? result.answer : { ...result.answer, storeRevision: revision }, replayed: result.replayed };
  }

  /**
   * A consuming BatchCheck's charges as one entry, answered per item in the
   * order given. It is appended with the expected last sequence when every
   * item charges one meter (the usual batch); one spanning several meters
   * has no single subject to expect on and is appended unkeyed, which stays
   * exact because applying re-checks each meter where the entry lands. A
   * batch this sidecar's state settles (nothing would be charged) appends nothing.
   */
  async chargeMany(items: ChargeBody[]): Promise<{ decision: Decision; replayed: boolean }[]> {
    const keys = new Set(items.flatMap((item) => (item.meter === null ? [] : [meterKey(item.tenantId, item.meter)])));
    const { result, revision } = await this.deps.commands.run(this.batchKind, { items }, {
      ...(keys.size === 1 && { concurrencyKey: [...keys][0]! }),
      settledLocally: (answers) => answers.every((answer) => !answer.charged),
    });
    return result.map((one) => ({ decision: one.replayed ? one.answer : { ...one.answer, storeRevision: revision }, replayed: one.replayed }));
  }

  /** The same rules as single-node's in-write charge (Decider.decideAndConsume), plus the limit the policy saw on older state. */
  private apply(body: ChargeBody): ChargeResult {
    const { metering } = this.deps;
    const fresh = body.decision;
    let charged = false;
    const scope = { tenantId: body.tenantId, key: body.idempotencyKey, operation: "check", request: body.request };
    const { answer, replayed } = idempotentWrite<Decision>(this.deps, scope, (tx, replay) => {
      // A retry charges nothing, so limit_reached alone does not override the stored allow; any other deny wins.
      if (replay && fresh.reasons.every((r) => r.code === "limit_reached")) return { answer: replay, keep: false, replayed: true };
      if (!fresh.allow || body.meter === null) return { answer: fresh, keep: false };
      const state = metering.stateFor(body.tenantId, body.meter, tx.now);
      if (state.limit.kind === "seats") return { answer: fresh, keep: false };
      // The policy allowed on this sidecar's state; another sidecar may have taken the units since.
      if (body.amount > remaining(state)) return { answer: { ...fresh, allow: false, reasons: [limitReached(state, body.amount)] }, keep: false };
      metering.charge(tx, body.tenantId, state, body.amount);
      charged = true;
      return { answer: fresh, keep: true };
    });
    return { answer, replayed, charged };
  }
}

function decodeBatch(raw: unknown): BatchChargeBody {
  const items = objectBody(raw).items;
  if (!Array.isArray(items) || items.length === 0) throw new Error("items is not a non-empty array");
  return { items: items.map((item, i) => {
    try {
      return decodeCharge(item);
    } catch (error) {
      throw new Error(`items[${i}]: ${(error as Error).message}`);
    }
  }) };
}

function decodeCharge(raw: unknown): ChargeBody {
  const body = objectBody(raw);
  const amount = body.amount;
  if (!Number.isSafeInteger(amount) || (amount as number) < 1) throw new Error("amount is not a positive integer");
  if (body.meter !== null && typeof body.meter !== "string") throw new Error("meter is neither a string nor null");
  const decision = objectBody(body.decision);
  if (typeof decision.allow !== "boolean" || !Array.isArray(decision.reasons)) throw new Error("decision has no allow or reasons");
  return {
    tenantId: stringField(body, "tenantId"),
    idempotencyKey: stringField(body, "idempotencyKey"),
    request: body.request,
    amount: amount as number,
    meter: body.meter as string | null,
    decision: { ...(decision as unknown as Decision), reasons: decision.reasons as Reason[] },
  };
}
