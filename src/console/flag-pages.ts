import { DEFAULT_UNUSED_DAYS } from "../flags/flag-admin.js";
import { requireId } from "../validation.js";
import { form, reasonField } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html } from "./html.js";
import { describeRules } from "./flag-rollout.js";
import { flagPath, flagRolloutPages } from "./flag-rollout-pages.js";

const iso = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString().slice(0, 10));

/**
 * The flag list (FlagAdmin.list, as AdminService.ListFlags): flags are the
 * operator's, not a tenant's, so no tenant selection is needed. Same
 * capabilities as ListFlags: flags.write or flags.kill.
 */
export function flagPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.nav({ href: "/console/flags", label: "Flags", needs: ["flags.write", "flags.kill"] });

  routes.page("/console/flags", ["flags.write", "flags.kill"], ({ ctx }) => {
    const flags = deps.flags.list(ctx.now, DEFAULT_UNUSED_DAYS);
    const mayKill = ctx.caller.capabilities.has("flags.kill");
    const mayWrite = ctx.caller.capabilities.has("flags.write");
    return {
      title: "Flags",
      body: html`<table><thead><tr><th>Key</th><th>Type</th><th>Owner</th><th>Risk</th><th>Description</th><th>State</th><th>Cleanup</th><th>Stale because</th><th>Rollout</th><th>Kill switch</th></tr></thead><tbody>
${flags.map(({ flag: f, staleReasons }) => html`<tr><td>${f.key}</td><td>${f.kind}</td><td>${f.owner}</td><td>${f.risk}</td><td>${f.description}</td>
<td>${f.killed ? "killed" : f.enabled ? "enabled" : "off"}</td><td>${iso(f.cleanupAt)}</td><td>${staleReasons.join(", ")}</td>
<td>${describeRules(f.rules).map((line) => html`${line}<br>`)}${mayWrite && html`<a href="${flagPath(f.key)}">Change rollout</a>`}</td>
<td>${mayKill && form(ctx, `/console/flags/${encodeURIComponent(f.key)}/kill`, html`<input type="hidden" name="killed" value="${f.killed ? "0" : "1"}">${reasonField(deps.reasonCodes)}`, f.killed ? "Revive" : "Kill")}</td></tr>`)}</tbody></table>
${flags.length === 0 && html`<p>No flags.</p>`}`,
    };
  });

  routes.action("/console/flags/:key/kill", ["flags.kill"], async ({ params, form: fields, actor }) => {
    const key = requireId(params.key, "key");
    await deps.flags.setKillSwitch(key, fields.killed === "1", actor());
    return "/console/flags";
  });

  flagRolloutPages(routes, deps);
}
