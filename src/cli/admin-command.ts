import { credentials, loadPackageDefinition, Metadata, type ServiceError } from "@grpc/grpc-js";
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import { existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { DEFAULTS, loadConfig } from "../config.js";
import { PACKAGE_ROOT } from "../paths.js";

/**
 * `bulkhead admin <command>`: every AdminService RPC as a subcommand, over
 * the same gRPC API the host and the console use, so the CLI can do nothing
 * the API would refuse. Commands and their flags come from admin.proto
 * itself: put-tenant is PutTenant, --tenant-id is tenant_id.
 */
interface FieldInfo {
  name: string;
  repeated: boolean;
  type: string;
  message?: string;
}

/** One line per command for --help (the proto's comments say more). */
const SUMMARY: Record<string, string> = {
  "put-tenant": "create or update a tenant (plan or billing status needs billing.write)",
  "get-tenant": "a tenant's metadata and member count",
  "search-tenants": "tenants by id or slug prefix: id, slug and status only",
  "delete-tenant": "mark deleted, revoke its API keys, end impersonations (--confirm-slug)",
  "put-user": "a user's profile (a user in several tenants needs --all-tenants)",
  "put-membership": "add a member or change its role or status",
  "remove-membership": "remove a member; the next Check denies",
  "sync-memberships": "a tenant's whole member list; Bulkhead applies the difference",
  "put-custom-role": "a tenant's own role with catalog permissions",
  "delete-custom-role": "refused while members hold it",
  "put-plan": "a plan's entitlements and limits (global: --all-tenants --approval-id)",
  "put-override": "grant or revoke one entitlement for one tenant, with expiry",
  "remove-override": "remove an override by id",
  "create-api-key": "a scoped key for one tenant; the key is printed once",
  "rotate-api-key": "a replacement key; the old one works for --overlap-seconds",
  "revoke-api-key": "refused on the very next Check",
  "list-api-keys": "a tenant's keys and their state, never secrets",
  "put-staff": "add or change a staff member; prints their token once (bootstrap only)",
  "request-approval": "ask a second staff member to approve one global change (--put-plan JSON or --put-user JSON)",
  "get-approval": "what an approval covers (content_json), to read before approving",
  "approve": "approve someone else's request",
  "break-glass": "emergency: approve one change yourself, once, for 15 min (break_glass; --justification)",
  "list-break-glass": "the break-glass grants, newest first, with their status",
  "start-impersonation": "act as one member of one tenant until --ttl-seconds pass",
  "end-impersonation": "end your session early",
  "watch-changes": "stream revisioned change records (JSON lines) until Ctrl-C",
  "put-flag": "create or replace a feature flag from --flag-json (bulkhead flags put is friendlier)",
  "delete-flag": "remove a flag; the next Check sees it gone",
  "set-kill-switch": "--killed: off everywhere at once (flags.kill, no approver needed)",
  "list-flags": "every flag as JSON, with --stale-only the ones needing cleanup",
};

const PROTO = join(PACKAGE_ROOT, "proto", "bulkhead", "v1", "admin.proto");
const kebab = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/_/g, "-").toLowerCase();

function loadService() {
  const definition = loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true });
  const service = definition["bulkhead.v1.AdminService"] as unknown as Record<string, MethodDefinition<object, object>>;
  const commands = new Map(Object.entries(service).filter(([name]) => /^[A-Z]/.test(name)).map(([name, method]) => [kebab(name), { name, method }]));
  const fieldsOf = (message: unknown): FieldInfo[] =>
    ((message as { type: { field: { name: string; label: string; type: string; typeName: string }[] } }).type.field).map((f) => ({
      name: f.name, repeated: f.label === "LABEL_REPEATED", type: f.type.replace("TYPE_", "").toLowerCase(), ...(f.typeName && { message: f.typeName }),
    }));
  const Client = (loadPackageDefinition(definition) as any).bulkhead.v1.AdminService;
  return { commands, fieldsOf, Client };
}

const CONNECTION = `Connection (every command):
  --addr HOST:PORT   sidecar address (BULKHEAD_GRPC_ADDR, default ${DEFAULTS.grpcAddr})
  --token-file FILE  read the bearer token from FILE (or BULKHEAD_ADMIN_TOKEN_FILE); keeps it
                     off the command line, where other users can read it in the process list
  --token TOKEN      bearer token on the command line (prefer --token-file or BULKHEAD_ADMIN_TOKEN);
                     default: BULKHEAD_ADMIN_TOKEN, then admin.token beside --db
  --db FILE          only to find admin.token (BULKHEAD_DB, default ${DEFAULTS.dbPath})
  --as NAME          who you are, audited, when the token is a shared one (default cli:<login>)
  --json '{...}'     the request as JSON (proto field names); flags override its fields`;

export function adminUsage(): string {
  const { commands } = loadService();
  const names = [...commands.keys()];
  return `bulkhead admin - AdminService from the command line (audited like the API)

Usage:
  bulkhead admin <command> [--field value ...]
  bulkhead admin <command> --help      the fields of one command

Commands:
${names.map((n) => `  ${n.padEnd(20)} ${SUMMARY[n] ?? ""}`).join("\n")}

Every write needs --tenant-id (or --all-tenants with --approval-id for a
global one) and --reason starting with a reason code, e.g.
  --reason "customer_request: ticket 4711"

Examples:
  bulkhead admin put-staff --staff-id stf_ann --name "Ann" --role support_agent --reason onboarding
  bulkhead admin get-tenant --tenant-id ten_acme --token "$STAFF_TOKEN"
  bulkhead admin create-api-key --tenant-id ten_acme --name ci --scopes projects.read,reports.export --reason customer_request
  bulkhead admin start-impersonation --tenant-id ten_acme --as-actor-id usr_alice --ttl-seconds 900 --reason "customer_request: ticket 9"

${CONNECTION}
`;
}

export class UsageError extends Error {}

/** Flags -> request object, typed by the proto: repeated fields take comma lists, bools take no value. */
function buildRequest(args: string[], fields: FieldInfo[]): { request: Record<string, unknown>; connection: Record<string, string> } {
  const connection: Record<string, string> = {};
  let request: Record<string, unknown> = {};
  const byFlag = new Map(fields.map((f) => [kebab(f.name), f]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument '${arg}'`);
    const flag = arg.slice(2);
    const field = byFlag.get(flag);
    const next = args[i + 1];
    const takeValue = (): string => {
      if (next === undefined || next.startsWith("--")) throw new UsageError(`--${flag} needs a value`);
      i++;
      return next;
    };
    if (["addr", "token", "token-file", "db", "as"].includes(flag)) connection[flag] = takeValue();
    else if (flag === "json") request = { ...(JSON.parse(takeValue()) as object), ...request };
    else if (!field) throw new UsageError(`unknown flag --${flag} (see --help for this command's fields)`);
    else if (field.type === "bool") request[field.name] = next === undefined || next.startsWith("--") ? true : takeValue() === "true";
    else if (field.message) request[field.name] = JSON.parse(takeValue());
    else if (field.repeated) request[field.name] = takeValue().split(",").map((v) => v.trim()).filter(Boolean);
    else if (/int|fixed/.test(field.type)) request[field.name] = wholeNumberFlag(flag, takeValue());
    else request[field.name] = takeValue();
  }
  return { request, connection };
}

/** Decimal digits only: Number() would read "0x10" as 16 and "1e3" as 1000. */
function wholeNumberFlag(flag: string, value: string): number {
  if (!/^[0-9]{1,15}$/.test(value)) throw new UsageError(`--${flag} must be a whole number in decimal digits, not '${value}'`);
  return Number(value);
}

function tokenFor(connection: Record<string, string>): string {
  if (connection.token) return connection.token;
  const tokenFile = connection["token-file"] ?? process.env.BULKHEAD_ADMIN_TOKEN_FILE;
  if (tokenFile) {
    if (!existsSync(tokenFile)) throw new UsageError(`--token-file: no file ${tokenFile}`);
    return readFileSync(tokenFile, "utf8").trim();
  }
  if (process.env.BULKHEAD_ADMIN_TOKEN) return process.env.BULKHEAD_ADMIN_TOKEN.split(",")[0]!.trim();
  const file = join(dirname(loadConfig(process.env, connection.db ? { db: connection.db } : {}).dbPath), "admin.token");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  throw new UsageError(`no token: pass --token, set BULKHEAD_ADMIN_TOKEN, or run next to the sidecar's ${file}`);
}

export async function adminCommand(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === "--help" || command === "-h") {
    (command ? process.stdout : process.stderr).write(adminUsage());
    return command ? 0 : 2;
  }
  const { commands, fieldsOf, Client } = loadService();
  const entry = commands.get(command);
  if (!entry) {
    process.stderr.write(`bulkhead admin: unknown command '${command}'\n\n${adminUsage()}`);
    return 2;
  }
  const fields = fieldsOf(entry.method.requestType);
  if (rest.includes("--help") || rest.includes("-h")) {
    const lines = fields.map((f) => `  --${kebab(f.name)}${f.type === "bool" ? "" : f.message ? " JSON" : f.repeated ? " A,B" : " VALUE"}`);
    process.stdout.write(`bulkhead admin ${command}: AdminService.${entry.name}\n  ${SUMMARY[command] ?? ""}\n\nFields:\n${lines.join("\n")}\n\n${CONNECTION}\n`);
    return 0;
  }
  try {
    const { request, connection } = buildRequest(rest, fields);
    if (entry.method.responseStream) return await withClient(Client, connection, (client, metadata) => streamToStdout(client, entry.name, request, metadata));
    console.log(JSON.stringify(await invokeAdmin(entry.name, request, connection), null, 2));
    return 0;
  } catch (error) {
    return reportFailure(`bulkhead admin ${command}`, error);
  }
}

/** Splits the connection flags (--addr, --token, --token-file, --db, --as) off a command line. */
export function connectionFlags(args: string[]): { connection: Record<string, string>; rest: string[] } {
  const connection: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!.startsWith("--") ? args[i]!.slice(2) : "";
    if (["addr", "token", "token-file", "db", "as"].includes(flag)) {
      const value = args[i + 1];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`--${flag} needs a value`);
      connection[flag] = value;
      i++;
    } else rest.push(args[i]!);
  }
  return { connection, rest };
}

/** One unary AdminService call with the CLI's credentials; throws the gRPC error. */
export async function invokeAdmin(method: string, request: unknown, connection: Record<string, string>): Promise<any> {
  const { Client } = loadService();
  return withClient(Client, connection, (client, metadata) =>
    new Promise<unknown>((resolve, reject) =>
      client[method](request, metadata, { deadline: Date.now() + 10_000 }, (e: ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r))),
    ),
  );
}

async function withClient<T>(Client: any, connection: Record<string, string>, run: (client: any, metadata: Metadata) => Promise<T>): Promise<T> {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${tokenFor(connection)}`);
  metadata.set("bulkhead-actor", connection.as ?? `cli:${userInfo().username.replace(/[^A-Za-z0-9_.@-]/g, "_")}`);
  const client = new Client(connection.addr ?? process.env.BULKHEAD_GRPC_ADDR ?? DEFAULTS.grpcAddr, credentials.createInsecure());
  try {
    return await run(client, metadata);
  } finally {
    client.close();
  }
}

/** Exit 2 for a usage mistake, 1 for a refused call (with the field at fault), rethrow anything else. */
export function reportFailure(prefix: string, error: unknown): number {
  if (error instanceof UsageError || error instanceof SyntaxError) {
    process.stderr.write(`${prefix}: ${error.message}\n`);
    return 2;
  }
  const e = error as ServiceError;
  if (typeof e.code !== "number") throw error;
  const field = e.metadata?.get("bulkhead-field")[0];
  process.stderr.write(`${prefix}: ${e.details}${field ? ` (field ${field})` : ""}\n`);
  return 1;
}

/** WatchChanges: one JSON line per change until interrupted. */
function streamToStdout(client: any, method: string, request: unknown, metadata: Metadata): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = client[method](request, metadata);
    stream.on("data", (message: unknown) => console.log(JSON.stringify(message)));
    stream.on("error", reject);
    stream.on("end", () => resolve(0));
    process.once("SIGINT", () => {
      stream.cancel();
      resolve(0);
    });
  });
}
