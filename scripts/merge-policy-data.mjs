// Merges policies/data/<name>.json into {"bulkhead": {"<name>": ...}} so the
// policy sees data.bulkhead.actions, data.bulkhead.roles, ... . Used by the
// policy build and by the opa-eval parity tests, so both read the same data.
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";

const dir = process.argv[2];
const bulkhead = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  bulkhead[basename(file, ".json")] = JSON.parse(readFileSync(join(dir, file), "utf8"));
}
process.stdout.write(JSON.stringify({ bulkhead }));
