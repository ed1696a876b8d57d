import { describe, expect, it } from "vitest";
import { portOf, readyAddresses, readyLine } from "../../src/cli/ready-line.js";

// The one format every script, test and bench reads a sidecar's ports from.
describe("ready line", () => {
  it("reads back what serve prints, one entry per process, in order", () => {
    const a = { grpcAddress: "127.0.0.1:41629", httpAddress: "127.0.0.1:40513" };
    const b = { grpcAddress: "[::1]:50051", httpAddress: "0.0.0.0:8080" };
    const stderr = `bulkhead: something else\n${readyLine(a)}\n${readyLine(b)}\n`;
    expect(readyAddresses(stderr)).toEqual([a, b]);
    expect(portOf(b.grpcAddress)).toBe(50051);
  });

  it("waits for the newline: a chunk may end inside the port number", () => {
    const line = readyLine({ grpcAddress: "127.0.0.1:41629", httpAddress: "127.0.0.1:40513" });
    expect(readyAddresses(line.slice(0, -2))).toEqual([]);
    expect(readyAddresses(line)).toEqual([]);
    expect(readyAddresses(`${line}\n`)).toHaveLength(1);
  });

  it("is not fooled by the same words inside a log line", () => {
    const json = `{"level":"info","msg":"${readyLine({ grpcAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2" })}"}\n`;
    expect(readyAddresses(json)).toEqual([]);
  });
});
