export { createBulkhead, type Bulkhead } from "./compose.js";
export { loadConfig, type Config } from "./config.js";
export { BulkheadError, ERROR_CATALOG, type ErrorCode } from "./errors.js";
