import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/paths.js";

/** Spawns a process and resolves once a line of its output matches `ready`; `output()` is everything it printed so far. */
export function spawnUntil(
  command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = output.match(ready);
      if (match) resolve({ child, match, output: () => output });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${command} exited with ${code} before it was ready:\n${output}`)));
    setTimeout(() => reject(new Error(`${command} not ready after 30 s:\n${output}`)), 30_000).unref();
  });
}

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
  dbPath: string, env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; httpPort: number; grpcAddress: string; output: () => string }> {
  const { child, match, output } = await spawnUntil(
    process.execPath,
    [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "serve", "--db", dbPath, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch", "--demo"],
    // Up to the newline: an output chunk may end in the middle of the port number.
    /gRPC listening on 127\.0\.0\.1:(\d+)\n[\s\S]*HTTP listening on 127\.0\.0\.1:(\d+)\n/,
    env,
  );
  return { child, httpPort: Number(match[2]), grpcAddress: `127.0.0.1:${match[1]}`, output };
}
