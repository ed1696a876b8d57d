import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";

// A start that failed (here: the gRPC port is taken) left a seeded database,
// key.secret and admin.token behind, which the next start reused silently
// (issue 15, item 10). Real process, real port.
let blocker: Server;
let port = 0;
beforeAll(async () => {
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  port = (blocker.address() as { port: number }).port;
});
afterAll(() => blocker.close());

const serve = (dbPath: string) =>
  spawnSync(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "serve", "--db", dbPath, "--grpc-addr", `127.0.0.1:${port}`, "--http-addr", "127.0.0.1:0", "--no-watch", "--demo"], {
    encoding: "utf8",
    timeout: 30_000,
  });

describe("a failed start", () => {
  it("names the taken address without a stack trace and leaves no files it created", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "bulkhead-failed-start-")), "data");
    const result = serve(join(dir, "bulkhead.db"));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`cannot bind gRPC on 127.0.0.1:${port} (BULKHEAD_GRPC_ADDR / --grpc-addr)`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it("never removes files that were there before it", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-failed-start-"));
    writeFileSync(join(dir, "key.secret"), "a".repeat(64));
    const result = serve(join(dir, "bulkhead.db"));
    expect(result.status).toBe(2);
    expect(readdirSync(dir)).toEqual(["key.secret"]);
  });
});
