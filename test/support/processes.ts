import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { portOf, readyAddresses, type ReadyAddresses } from "../../src/cli/ready-line.js";
import { PACKAGE_ROOT } from "../../src/paths.js";

/** What a spawned process printed so far: both streams in arrival order, and each alone. */
export interface ProcessOutput {
  output: () => string;
  stdout: () => string;
  stderr: () => string;
}

/** Spawns a process and resolves with what `ready` finds in its output, once it finds something. */
function spawnWatching<T>(
  command: string, args: string[], env: NodeJS.ProcessEnv, ready: (printed: { output: string; stderr: string }) => T | undefined,
): Promise<{ child: ChildProcess; found: T } & ProcessOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const printed = { output: "", stdout: "", stderr: "" };
    const outputs: ProcessOutput = { output: () => printed.output, stdout: () => printed.stdout, stderr: () => printed.stderr };
    let done = false;
    const onData = (stream: "stdout" | "stderr") => (chunk: string) => {
      printed.output += chunk;
      printed[stream] += chunk;
      if (done) return;
      const found = ready(printed);
      if (found !== undefined) {
        done = true;
        resolve({ child, found, ...outputs });
      }
    };
    // Decoded per stream, so a character split across two chunks is not mangled.
    child.stdout!.setEncoding("utf8").on("data", onData("stdout"));
    child.stderr!.setEncoding("utf8").on("data", onData("stderr"));
    child.on("exit", (code) => reject(new Error(`${command} exited with ${code} before it was ready:\n${printed.output}`)));
    setTimeout(() => reject(new Error(`${command} not ready after 30 s:\n${printed.output}`)), 30_000).unref();
  });
}

/** Spawns a process and resolves once a line of its output matches `ready`; `output()` is everything it printed so far. */
export async function spawnUntil(
  command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; match: RegExpMatchArray } & ProcessOutput> {
  const { found, ...rest } = await spawnWatching(command, args, env, ({ output }) => output.match(ready) ?? undefined);
  return { match: found, ...rest };
}

/**
 * Spawns something that serves Bulkhead (`bulkhead serve`, an example that
 * embeds it) and resolves once `processes` of them (`--workers N`: N) have
 * printed their ready line on stderr (src/cli/ready-line.ts, the one parser).
 */
export async function spawnUntilServing(
  command: string, args: string[], env: NodeJS.ProcessEnv = {}, processes = 1,
): Promise<{ child: ChildProcess; addresses: ReadyAddresses[] } & ProcessOutput> {
  const { found, ...rest } = await spawnWatching(command, args, env, ({ stderr }) => {
    const addresses = readyAddresses(stderr);
    return addresses.length >= processes ? addresses : undefined;
  });
  return { addresses: found, ...rest };
}

/** The compiled CLI, so a test runs what `npm start` and the packed install run. */
export const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");

/**
 * stripe-mock (installed by scripts/ensure-tool.sh with go install). It binds
 * port 0 and reports the port it got: picking a free port first and handing
 * it over races with every other process on a busy machine. Its HTTPS
 * listener, on by default at a fixed port, is moved to port 0 too.
 */
export async function startStripeMock(): Promise<{ url: string; stop: () => void }> {
  const binary = execFileSync("bash", [join(PACKAGE_ROOT, "scripts", "ensure-tool.sh"), "stripe-mock"], { encoding: "utf8" }).trim();
  const { child, match } = await spawnUntil(
    binary,
    ["-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"],
    /Listening for HTTP at address: 127\.0\.0\.1:(\d+)/,
  );
  return { url: `http://127.0.0.1:${match[1]}`, stop: () => child.kill("SIGTERM") };
}

/** `bulkhead serve` as its own process (compiled code), on free ports. */
export async function startSidecarProcess(
  dbPath: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = [],
): Promise<{ child: ChildProcess; httpPort: number; grpcAddress: string } & ProcessOutput> {
  const { child, addresses, ...outputs } = await spawnUntilServing(
    process.execPath,
    [CLI, "serve", "--db", dbPath, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch", "--demo", ...extraArgs],
    env,
  );
  const [{ grpcAddress, httpAddress }] = addresses as [ReadyAddresses];
  return { child, httpPort: portOf(httpAddress), grpcAddress, ...outputs };
}
