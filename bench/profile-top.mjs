// Prints the top of a V8 CPU profile (node --cpu-prof): self time per
// function, and inclusive time for frames in this project's code.
//
//   node bench/profile-top.mjs <file.cpuprofile> [N]
import { readFileSync } from "node:fs";

const [file, n = "25"] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
const dt = new Map();
// Sample i lasted timeDeltas[i + 1]; close enough to attribute timeDeltas[i].
profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const label = (cf) => `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${cf.lineNumber + 1}`;
for (const [id, us] of dt) {
  const key = label(byId.get(id).callFrame);
  self.set(key, (self.get(key) ?? 0) + us);
}
// Inclusive: walk parents once per node.
const parent = new Map();
for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
const inclusive = new Map();
for (const [id, us] of dt) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const key = label(byId.get(at).callFrame);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}
const show = (title, map, filter = () => true) => {
  console.log(`\n${title} (total ${(total / 1000).toFixed(0)} ms sampled)`);
  [...map].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, Number(n))
    .forEach(([k, us]) => console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`));
};
show("self time", self);
show("inclusive, project code", inclusive, (k) => k.includes("dist/src"));
