# One test per reason code, plus precedence and terminal-code behaviour.
# Run with: npm run test:policies (opa test policies/ with the merged data).
package bulkhead.decision_test

import data.bulkhead.decision

# An admin of an active pro tenant doing something it may do.
base := {
	"action": "projects.read",
	"resource": {"type": "project", "id": "prj_1", "tenant_id": "ten_a"},
	"context": {
		"tenant": {"id": "ten_a", "status": "active", "plan_code": "pro", "billing_status": "active"},
		"actor": {"id": "usr_1", "type": "user"},
		"membership": {"role": "admin", "status": "active"},
		"permissions": data.bulkhead.roles.admin,
		"entitlements": ["projects", "exports.csv", "team_members", "analytics.pro"],
		"limits": {"exports.csv.monthly": {"soft": 80, "hard": 100, "resets_at": "2026-12-01T00:00:00.000Z"}, "seats": {"soft": null, "hard": 10, "resets_at": ""}},
		"usage": {"exports.csv.monthly": 12, "seats": 3},
		"features": {"new_export_pipeline": true},
		"api_key": null,
		"impersonation": null,
	},
}

codes(result) := [r.code | some r in result.reasons]

with_action(a) := json.patch(base, [{"op": "replace", "path": "/action", "value": a}])

test_allowed if {
	result := decision with input as base
	result.allow
	result.reasons == []
}

test_export_allowed_for_pro_admin if {
	decision.allow with input as with_action("reports.export")
}

test_unknown_action if {
	result := decision with input as with_action("projects.teleport")
	not result.allow
	codes(result) == ["unknown_action"]
}

test_missing_action_is_unknown if {
	result := decision with input as json.remove(base, ["action"])
	codes(result) == ["unknown_action"]
}

test_resource_tenant_missing if {
	result := decision with input as json.remove(base, ["resource/tenant_id"])
	not result.allow
	codes(result) == ["resource_tenant_missing"]
}

test_resource_tenant_empty_string if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/resource/tenant_id", "value": ""}])
	codes(result) == ["resource_tenant_missing"]
}

test_wrong_tenant_reveals_nothing_else if {
	# Also billing-suspended and not in plan: none of that may show.
	req := json.patch(base, [
		{"op": "replace", "path": "/resource/tenant_id", "value": "ten_b"},
		{"op": "replace", "path": "/context/tenant/billing_status", "value": "canceled"},
		{"op": "replace", "path": "/context/entitlements", "value": []},
	])
	result := decision with input as req
	not result.allow
	codes(result) == ["wrong_tenant"]
}

test_not_a_member if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/context/membership", "value": null}])
	not result.allow
	codes(result) == ["not_a_member"]
}

test_not_a_member_when_membership_absent if {
	result := decision with input as json.remove(base, ["context/membership"])
	codes(result) == ["not_a_member"]
}

test_membership_inactive if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/context/membership/status", "value": "suspended"}])
	not result.allow
	codes(result) == ["membership_inactive"]
}

test_tenant_suspended if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/context/tenant/status", "value": "suspended"}])
	not result.allow
	codes(result) == ["tenant_suspended"]
}

test_billing_suspended if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/context/tenant/billing_status", "value": "canceled"}])
	not result.allow
	codes(result) == ["billing_suspended"]
}

test_unknown_billing_status_is_suspended if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/context/tenant/billing_status", "value": "mystery"}])
	codes(result) == ["billing_suspended"]
}

test_billing_read_only_denies_writes if {
	req := json.patch(with_action("projects.create"), [{"op": "replace", "path": "/context/tenant/billing_status", "value": "unpaid"}])
	result := decision with input as req
	not result.allow
	codes(result) == ["billing_read_only"]
}

test_billing_read_only_allows_reads if {
	req := json.patch(base, [{"op": "replace", "path": "/context/tenant/billing_status", "value": "unpaid"}])
	decision.allow with input as req
}

test_billing_actions_survive_billing_state if {
	req := json.patch(with_action("billing.update"), [
		{"op": "replace", "path": "/context/tenant/billing_status", "value": "canceled"},
		{"op": "replace", "path": "/context/permissions", "value": ["billing.update"]},
	])
	decision.allow with input as req
}

test_store_billing_access_overrides_mapping if {
	req := json.patch(base, [{"op": "add", "path": "/context/tenant/billing_access", "value": "none"}])
	result := decision with input as req
	codes(result) == ["billing_suspended"]
}

test_missing_permission if {
	result := decision with input as json.patch(base, [{"op": "replace", "path": "/context/permissions", "value": []}])
	not result.allow
	codes(result) == ["missing_permission"]
	result.reasons[0].details == {"permission": "projects.read", "role": "admin"}
}

test_api_key_scope if {
	req := json.patch(base, [
		{"op": "replace", "path": "/context/api_key", "value": {"id": "key_1", "scopes": ["reports.export"]}},
		{"op": "replace", "path": "/context/permissions", "value": ["reports.export"]},
	])
	result := decision with input as req
	not result.allow
	codes(result) == ["api_key_scope"]
}

test_api_key_in_scope if {
	req := json.patch(base, [{"op": "replace", "path": "/context/api_key", "value": {"id": "key_1", "scopes": ["projects.read"]}}])
	decision.allow with input as req
}

test_not_in_plan if {
	req := json.patch(with_action("reports.export"), [
		{"op": "replace", "path": "/context/tenant/plan_code", "value": "free"},
		{"op": "replace", "path": "/context/entitlements", "value": ["projects"]},
	])
	result := decision with input as req
	not result.allow
	codes(result) == ["not_in_plan"]
	result.reasons[0].details == {"entitlement": "exports.csv", "plan": "free"}
}

test_feature_disabled if {
	req := json.patch(with_action("reports.export"), [{"op": "replace", "path": "/context/features", "value": {}}])
	result := decision with input as req
	not result.allow
	codes(result) == ["feature_disabled"]
}

test_limit_reached_at_hard_limit if {
	req := json.patch(with_action("reports.export"), [{"op": "replace", "path": "/context/usage/exports.csv.monthly", "value": 100}])
	result := decision with input as req
	not result.allow
	codes(result) == ["limit_reached"]
	result.reasons[0].details == {
		"meter": "exports.csv.monthly", "used": "100", "limit": "100", "requested": "1",
		"resets_at": "2026-12-01T00:00:00.000Z",
	}
}

test_limit_counts_requested_amount if {
	req := json.patch(with_action("reports.export"), [
		{"op": "replace", "path": "/context/usage/exports.csv.monthly", "value": 95},
		{"op": "add", "path": "/consume", "value": 6},
	])
	result := decision with input as req
	codes(result) == ["limit_reached"]
}

test_limit_non_numeric_usage_fails_closed if {
	req := json.patch(with_action("reports.export"), [{"op": "replace", "path": "/context/usage/exports.csv.monthly", "value": "12"}])
	result := decision with input as req
	codes(result) == ["limit_reached"]
}

test_owner_required if {
	req := json.patch(with_action("members.invite"), [{"op": "add", "path": "/resource/attributes", "value": {"role": "owner"}}])
	result := decision with input as req
	not result.allow
	codes(result) == ["owner_required"]
}

test_owner_may_invite_owner if {
	req := json.patch(with_action("members.invite"), [
		{"op": "add", "path": "/resource/attributes", "value": {"role": "owner"}},
		{"op": "replace", "path": "/context/membership/role", "value": "owner"},
	])
	decision.allow with input as req
}

test_reasons_accumulate_in_precedence_order if {
	req := json.patch(with_action("reports.export"), [
		{"op": "replace", "path": "/context/permissions", "value": []},
		{"op": "replace", "path": "/context/entitlements", "value": []},
		{"op": "replace", "path": "/context/tenant/billing_status", "value": "canceled"},
		{"op": "replace", "path": "/context/features", "value": {}},
	])
	result := decision with input as req
	codes(result) == ["billing_suspended", "missing_permission", "not_in_plan", "feature_disabled"]
}

test_resource_tenant_missing_then_terminal if {
	req := json.patch(json.remove(base, ["resource/tenant_id"]), [{"op": "replace", "path": "/context/membership", "value": null}])
	result := decision with input as req
	codes(result) == ["resource_tenant_missing", "not_a_member"]
}

test_empty_input_denies if {
	result := decision with input as {}
	not result.allow
	codes(result) == ["unknown_action"]
}

test_null_hard_limit_is_unlimited if {
	req := json.patch(with_action("reports.export"), [
		{"op": "replace", "path": "/context/limits/exports.csv.monthly/hard", "value": null},
		{"op": "replace", "path": "/context/usage/exports.csv.monthly", "value": 1000000},
	])
	decision.allow with input as req
}

test_invite_denied_when_seats_are_full if {
	req := json.patch(with_action("members.invite"), [{"op": "replace", "path": "/context/usage/seats", "value": 10}])
	result := decision with input as req
	codes(result) == ["limit_reached"]
	result.reasons[0].details.meter == "seats"
}

test_invite_allowed_below_seat_limit if {
	decision.allow with input as with_action("members.invite")
}

test_membership_inactive_reveals_nothing_else if {
	req := json.patch(with_action("reports.export"), [
		{"op": "replace", "path": "/context/membership/status", "value": "invited"},
		{"op": "replace", "path": "/context/tenant/billing_status", "value": "unpaid"},
		{"op": "replace", "path": "/context/entitlements", "value": []},
	])
	result := decision with input as req
	codes(result) == ["membership_inactive"]
}

test_action_without_access_is_gated_as_a_write if {
	req := json.patch(with_action("projects.read"), [{"op": "replace", "path": "/context/tenant/billing_status", "value": "unpaid"}])
	result := decision with input as req
		with data.bulkhead.actions as {"projects.read": {"permission": "projects.read", "entitlement": "projects"}}
	codes(result) == ["billing_read_only"]
}

impersonating(role) := json.patch(base, [{"op": "replace", "path": "/context/impersonation", "value": {"session_id": "imp_1", "staff_id": "stf_1", "staff_role": role}}])

test_impersonation_read_allowed_for_support_agent if {
	decision.allow with input as impersonating("support_agent")
}

test_impersonation_write_restricted_for_support_agent if {
	req := json.patch(impersonating("support_agent"), [{"op": "replace", "path": "/action", "value": "projects.create"}])
	result := decision with input as req
	not result.allow
	codes(result) == ["impersonation_restricted"]
	result.reasons[0].details == {"staff_role": "support_agent", "session_id": "imp_1"}
}

test_impersonation_never_exports_customer_data if {
	req := json.patch(impersonating("support_admin"), [{"op": "replace", "path": "/action", "value": "reports.export"}])
	codes(decision) == ["impersonation_restricted"] with input as req
}

test_impersonation_unknown_staff_role_allows_nothing if {
	codes(decision) == ["impersonation_restricted"] with input as impersonating("intern")
}
