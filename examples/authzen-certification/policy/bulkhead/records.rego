# The AuthZEN certification fixture's record rules (openid/authzen,
# certification/authorization-api-1_0-scenario.md, section C-1.4), added to
# the generic boundary checks: membership, role and permission still decide
# first, these only take more away.
#
# Roles come from the store, never from subject.properties: bob is an
# archivist there, so "a subject with role admin" is bob as the store knows
# him (rule 6) and his asserted role changes nothing.
package bulkhead.checks

record_status := input.resource.attributes.status if is_string(input.resource.attributes.status)

else := ""

# Rule 5: an archived record is written only by the archive's curators.
violations contains reason("record_archived", "the record is archived", {"status": record_status}) if {
	input.action == "write"
	record_status == "archived"
	role_name != "archivist"
}

# Rule 4: archivists curate the archive; they do not write live records.
violations contains reason("archivists_write_archived_only", "an archivist writes archived records only", {"role": role_name}) if {
	input.action == "write"
	role_name == "archivist"
	record_status != "archived"
}

# Rules 7 and 8: only a soft delete, asserted by the caller as action.properties.soft.
violations contains reason("hard_delete_refused", "only a soft delete (action.properties.soft = true) is allowed", {}) if {
	input.action == "delete"
	not input.asserted.action.soft == true
}
