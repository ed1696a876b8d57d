# Generic tenant-boundary checks behind bulkhead/decision.
#
# Every check is written as "deny unless proven fine": a missing or oddly
# typed field yields a violation, never a silent pass. Reasons are collected
# in a set and put into precedence order by decision.rego.
package bulkhead.checks

action := data.bulkhead.actions[input.action]

ctx := input.context

tenant := ctx.tenant

membership := ctx.membership if is_object(ctx.membership)

resource_tenant := input.resource.tenant_id if {
	is_string(input.resource.tenant_id)
	input.resource.tenant_id != ""
}

same_tenant if resource_tenant == tenant.id

is_member if membership.role

# Codes after which nothing else is revealed: once the caller is in the wrong
# tenant, outside it, or not (yet) an active member of it, any further reason
# would describe a tenant it may not see.
terminal := {"unknown_action", "wrong_tenant", "not_a_member", "membership_inactive"}

# Most fundamental first. Policy-specific codes come last; a code missing
# from this list is still reported (after these), never dropped.
precedence := [
	"unknown_action",
	"resource_tenant_missing",
	"wrong_tenant",
	"not_a_member",
	"membership_inactive",
	"tenant_suspended",
	"billing_suspended",
	"billing_read_only",
	"impersonation_restricted",
	"missing_permission",
	"api_key_scope",
	"not_in_plan",
	"feature_disabled",
	"limit_reached",
	"owner_required",
]

violations contains reason("unknown_action", "action is not in the catalog", {"action": format_action}) if {
	not action
}

format_action := input.action if is_string(input.action)

else := ""

violations contains reason("resource_tenant_missing", "resource has no tenant_id", {}) if {
	not resource_tenant
}

violations contains reason("wrong_tenant", "resource belongs to another tenant", {}) if {
	resource_tenant
	not same_tenant
}

violations contains reason("not_a_member", "actor is not a member of the tenant", {}) if {
	not is_member
}

violations contains reason(
	"membership_inactive",
	concat("", ["membership is ", membership_status]),
	{"status": membership_status},
) if {
	is_member
	membership_status != "active"
}

membership_status := membership.status if is_string(membership.status)

else := "unknown"

violations contains reason(
	"tenant_suspended",
	concat("", ["tenant status is ", tenant_status]),
	{"status": tenant_status},
) if {
	tenant_status != "active"
}

tenant_status := tenant.status if is_string(tenant.status)

else := "unknown"

# The store may already know the access level (grace periods, per-plan
# mapping); otherwise the billing status maps through data. Unknown -> none.
billing_access := tenant.billing_access if is_string(tenant.billing_access)

else := mapped if {
	mapped := data.bulkhead.billing_access[tenant.billing_status]
}

else := "none"

# An action's access level; a catalog entry without a known one is treated as
# a write, so a typo in the catalog can only make billing gates stricter.
action_access := action.access if action.access in {"read", "write", "billing"}

else := "write"

# Actions with access "billing" are how a customer fixes billing, so billing
# state never blocks them.
violations contains reason(
	"billing_suspended",
	"billing access is suspended",
	{"billing_status": billing_status},
) if {
	billing_access == "none"
	action_access != "billing"
}

violations contains reason(
	"billing_read_only",
	"billing state allows read-only access",
	{"billing_status": billing_status},
) if {
	billing_access == "read_only"
	action_access == "write"
}

billing_status := tenant.billing_status if is_string(tenant.billing_status)

else := "unknown"

violations contains reason(
	"missing_permission",
	concat("", ["role '", role_name, "' lacks permission ", action.permission]),
	{"permission": action.permission, "role": role_name},
) if {
	# An API key's scopes are its permissions; api_key_scope reports those.
	not is_object(ctx.api_key)
	not action.permission in ctx.permissions
}

# Staff acting through an impersonation session see the member's view, with
# no more than the member may do and no more than their staff role allows
# (data.bulkhead.staff_roles): which access levels, and whether customer data
# may leave through an export. An unknown staff role allows nothing.
violations contains reason(
	"impersonation_restricted",
	impersonation_problem,
	{"staff_role": staff_role, "session_id": impersonation_session},
) if {
	is_object(ctx.impersonation)
	impersonation_problem
}

impersonation_problem := concat("", ["staff role '", staff_role, "' may not use ", action_access, " access while impersonating"]) if {
	not staff_allows_access
} else := concat("", ["staff role '", staff_role, "' may not export customer data while impersonating"]) if {
	action.customer_data == true
	not staff_allows_export
}

staff_allows_access if action_access in data.bulkhead.staff_roles[staff_role].impersonation_access

staff_allows_export if data.bulkhead.staff_roles[staff_role].customer_data_export == true

staff_role := ctx.impersonation.staff_role if is_string(ctx.impersonation.staff_role)

else := ""

impersonation_session := ctx.impersonation.session_id if is_string(ctx.impersonation.session_id)

else := ""

role_name := membership.role if is_string(membership.role)

else := ""

violations contains reason(
	"api_key_scope",
	concat("", ["API key scopes do not cover ", action.permission]),
	{"permission": action.permission},
) if {
	is_object(ctx.api_key)
	not action.permission in ctx.api_key.scopes
}

violations contains reason(
	"not_in_plan",
	concat("", ["plan '", plan_code, "' does not include ", action.entitlement]),
	{"entitlement": action.entitlement, "plan": plan_code},
) if {
	action.entitlement
	not action.entitlement in ctx.entitlements
}

plan_code := tenant.plan_code if is_string(tenant.plan_code)

else := ""

violations contains reason(
	"feature_disabled",
	concat("", ["feature ", action.flag, " is off for this tenant"]),
	{"flag": action.flag},
) if {
	action.flag
	not ctx.features[action.flag] == true
}

# A metered action consumes at least one unit, so a tenant exactly at its
# hard limit is denied. A meter without a configured hard limit is unlimited.
violations contains reason(
	"limit_reached",
	concat("", ["limit reached for ", action.meter]),
	{
		"meter": action.meter,
		"used": number_text(used),
		"limit": number_text(hard_limit),
		"requested": number_text(requested),
		"resets_at": resets_at,
	},
) if {
	action.meter
	hard_limit
	not within_limit
}

# null (or no limit entry) means the meter is unlimited for this tenant.
hard_limit := h if {
	h := ctx.limits[action.meter].hard
	h != null
}

resets_at := r if {
	r := ctx.limits[action.meter].resets_at
	is_string(r)
}

else := ""

used := n if {
	n := ctx.usage[action.meter]
}

else := 0

requested := input.consume if {
	is_number(input.consume)
	input.consume > 0
}

else := 1

within_limit if {
	is_number(hard_limit)
	is_number(used)
	used + requested <= hard_limit
}

number_text(n) := format_int(n, 10) if is_number(n)

else := "?"

# Policy-specific: only an owner may invite another owner.
violations contains reason(
	"owner_required",
	"only an owner may invite an owner",
	{"role": "owner"},
) if {
	input.action == "members.invite"
	input.resource.attributes.role == "owner"
	role_name != "owner"
}

# Violations in precedence order, cut after the first terminal code.
ordered := array.concat(
	[r | some code in precedence; some r in violations; r.code == code],
	[r | some r in violations; not r.code in {c | some c in precedence}],
)

first_terminal := min({i | some i, r in ordered; r.code in terminal})

reasons := array.slice(ordered, 0, first_terminal + 1) if {
	is_number(first_terminal)
} else := ordered

reason(code, message, details) := {"code": code, "message": message, "details": details}
