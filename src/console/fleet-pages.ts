import { FLEET_STALE_MS } from "../replication/fleet-status.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html } from "./html.js";

/**
 * The fleet (ADR 90, changes.watch): each sidecar's policy revision,
 * applied store revision and lag. No tenant data, so no selection. In
 * replicated mode it reads what the sidecars publish to `<stream>_fleet`;
 * a row not refreshed for FLEET_STALE_MS is marked stale.
 */
export function fleetPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.nav({ href: "/console/fleet", label: "Fleet", needs: ["changes.watch"] });

  routes.page("/console/fleet", ["changes.watch"], async () => {
    const fleet = await deps.fleet();
    return {
      title: "Fleet",
      body: html`<p>${fleet.mode === "single-node" ? "Single-node mode: this sidecar only." : html`Replicated mode: the stream is at sequence <b id="last-seq">${fleet.lastSeq}</b>; a row not refreshed for ${FLEET_STALE_MS / 1000} s is stale.`}</p>
<table id="fleet"><thead><tr><th>Sidecar</th><th>Host</th><th>Policy revision</th><th>Applied store revision</th><th>Lag (entries)</th><th>Reported at</th><th>State</th></tr></thead><tbody>
${fleet.sidecars.map((s) => html`<tr${s.stale && html` class="stale"`}><td>${s.id}</td><td>${s.host}</td><td>${s.policyRevision}</td><td>${s.appliedSeq}</td><td>${s.lagEntries}</td>
<td>${new Date(s.updatedAt).toISOString()}</td><td>${s.stale ? "stale" : "reporting"}</td></tr>`)}</tbody></table>
${fleet.sidecars.length === 0 && html`<p>No sidecar has reported yet.</p>`}`,
    };
  });
}
