import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BulkheadError, invalidArgument } from "../../src/errors.js";
import { LocalCommandWriter } from "../../src/store/command-writer.js";
import { openDatabase } from "../../src/store/database.js";
import { readRevision, RevisionWriter } from "../../src/store/revision-writer.js";
import { CommandRegistry, encodeCommand, isCommandOutcome, objectBody, stringField, UnappliableCommand, type CommandKind } from "../../src/store/store-command.js";
import { createSqliteStores } from "../../src/store/stores.js";
import { testClock } from "../support/test-time.js";

// The command seam (ADRs 42-43) on a real SQLite file: what a command is on
// the wire, what a build refuses to guess at, and how applying a log entry
// moves the revision.
const newStore = () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-command-")), "b.db"));
  const clock = testClock();
  const writer = new RevisionWriter(db, clock);
  const stores = createSqliteStores(db);
  const registry = new CommandRegistry();
  const putUser: CommandKind<{ id: string; email: string }, string> = registry.register({
    type: "test.user.put",
    version: 2,
    decode(body, v) {
      const b = objectBody(body);
      // v1 called the field "mail": decode upgrades old entries to today's shape.
      return { id: stringField(b, "id"), email: v === 1 ? stringField(b, "mail") : stringField(b, "email") };
    },
    apply(tx, body) {
      if (body.email === "") throw invalidArgument("email", "is required");
      stores.directory.putUser(tx, { id: body.id, email: body.email, displayName: body.id });
      return body.id;
    },
  });
  return { db, clock, writer, stores, registry, putUser };
};

const entry = (command: object) => Buffer.from(JSON.stringify(command));

describe("commands", () => {
  it("single-node mode applies the command as bytes, one revision per write, at the clock's time", async () => {
    const { db, clock, writer, registry, putUser, stores } = newStore();
    const local = new LocalCommandWriter(writer, registry, clock);
    const committed = await local.run(putUser, { id: "usr_1", email: "one@example.com" });
    expect(committed).toEqual({ result: "usr_1", revision: 1 });
    expect(stores.directory.user("usr_1")?.email).toBe("one@example.com");
    expect(readRevision(db)).toBe(1);
  });

  it("refuses what a build must not guess at: unknown type, newer version, no time, bad body", () => {
    const { registry } = newStore();
    const at = Date.UTC(2026, 0, 1);
    expect(() => registry.decode(entry({ type: "test.unknown", v: 1, at, body: {} }))).toThrow(/unknown command 'test.unknown'/);
    expect(() => registry.decode(entry({ type: "test.user.put", v: 3, at, body: {} }))).toThrow(/v3: this build applies v1..v2/);
    expect(() => registry.decode(entry({ type: "test.user.put", v: 2, body: { id: "u", email: "e" } }))).toThrow(/no valid time/);
    expect(() => registry.decode(entry({ type: "test.user.put", v: 2, at, body: { id: 7 } }))).toThrow(/id is not a string/);
    expect(() => registry.decode(Buffer.from("{not json"))).toThrow(UnappliableCommand);
    // An old version still applies, upgraded.
    expect(registry.decode(entry({ type: "test.user.put", v: 1, at, body: { id: "u", mail: "old@example.com" } })).body).toEqual({ id: "u", email: "old@example.com" });
  });

  it("a log entry commits as exactly its sequence, even when refused, and a refusal writes no row", () => {
    const { db, writer, registry, stores } = newStore();
    const apply = (seq: number, body: object) => {
      const { command, kind, body: decoded } = registry.decode(encodeCommand({ type: "test.user.put", v: 2, at: Date.UTC(2026, 0, 1), body }));
      return writer.applyAt(seq, command.at, (tx) => kind.apply(tx, decoded), isCommandOutcome);
    };
    expect(apply(5, { id: "usr_a", email: "a@example.com" })).toEqual({ result: { ok: true, value: "usr_a" }, revision: 5 });
    const refused = apply(6, { id: "usr_b", email: "" });
    expect(refused.revision).toBe(6);
    expect(refused.result.ok).toBe(false);
    expect(stores.directory.user("usr_b")).toBeUndefined();
    expect(readRevision(db)).toBe(6);
    // An entry at or below the applied revision is never applied twice.
    expect(() => apply(6, { id: "usr_c", email: "c@example.com" })).toThrow(/not after the applied revision 6/);
  });

  it("an apply that fails for a reason that is not the command's (SQLite, a bug) throws and leaves the revision where it was", () => {
    const { db, writer } = newStore();
    expect(isCommandOutcome(new BulkheadError("STORE_FAILED", "disk"))).toBe(false);
    expect(() => writer.applyAt(3, 0, () => {
      throw new Error("boom");
    }, isCommandOutcome)).toThrow("boom");
    expect(readRevision(db)).toBe(0);
  });

  it("simulate answers without writing; refused local writes fail and write nothing", () => {
    const { db, writer, stores } = newStore();
    const answer = writer.simulate((tx) => {
      stores.directory.putUser(tx, { id: "usr_s", email: "s@example.com", displayName: "S" });
      return tx.revision;
    }, 0);
    expect(answer).toBe(0);
    expect(stores.directory.user("usr_s")).toBeUndefined();
    writer.refuseLocalWrites(() => new BulkheadError("REPLICATION_UNAVAILABLE", "not a command"));
    expect(() => writer.write((tx) => stores.directory.putUser(tx, { id: "usr_t", email: "t@example.com", displayName: "T" }))).toThrow(/not a command/);
    expect(stores.directory.user("usr_t")).toBeUndefined();
    expect(readRevision(db)).toBe(0);
  });
});
