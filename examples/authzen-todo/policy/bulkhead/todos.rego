# The AuthZEN todo interop scenario's rules (openid/authzen,
# docs/scenarios/todo), added to the generic boundary checks: membership,
# role and permission decide first (roles/data.json: viewers read, editors
# also create, update and delete), this only takes more away.
#
# Rick is both admin (deletes any todo) and evil_genius (updates any todo); a
# membership has one role, so he holds one role with both grants, the ".any"
# permissions. Everyone else updates and deletes only the todos they own.
#
# A todo's owner is resource.properties.ownerID, an email, while subject.id
# is the identity provider's PID; the policy input carries the actor id only,
# so the PID -> email table of the fixture's identity provider is policy data
# (todo_identities/data.json, the same pairs as seed.json's users). An
# unknown PID owns nothing. ADR 69.
package bulkhead.checks

owner_actions := {"can_update_todo": "todos.update.any", "can_delete_todo": "todos.delete.any"}

actor_email := data.bulkhead.todo_identities[input.context.actor.id]

owns_todo if {
	is_string(input.resource.attributes.ownerID)
	actor_email == input.resource.attributes.ownerID
}

violations contains reason("todo_owner_required", "only the todo's owner may do this", {"owner": format_owner}) if {
	any_permission := owner_actions[input.action]
	not any_permission in ctx.permissions
	not owns_todo
}

format_owner := input.resource.attributes.ownerID if is_string(input.resource.attributes.ownerID)

else := ""
