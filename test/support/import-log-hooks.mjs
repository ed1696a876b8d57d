// Module hooks (node:module register) that append every @opentelemetry module a
// process imports to the file in `data.file`: the proof that a sidecar without
// tracing loads none of the SDK.
import { appendFileSync } from "node:fs";

let file;
export function initialize(data) {
  file = data.file;
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes("/node_modules/@opentelemetry/")) appendFileSync(file, `${result.url}\n`);
  return result;
}
