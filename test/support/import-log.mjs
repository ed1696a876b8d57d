// `node --import` this file (with OTEL_IMPORT_LOG naming a file) to record what the process imports from @opentelemetry.
import { register } from "node:module";

register("./import-log-hooks.mjs", import.meta.url, { data: { file: process.env.OTEL_IMPORT_LOG } });
