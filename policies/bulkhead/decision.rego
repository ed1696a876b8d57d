# Entrypoint bulkhead/decision: {"allow": bool, "reasons": [...]}.
#
# Only the two output rules live in this package, because the entrypoint
# evaluates to the whole package document.
package bulkhead.decision

import data.bulkhead.checks

# Allow needs the absence of every violation and, as a second line of defence,
# positive proof of the two boundary facts.
default allow := false

allow if {
	count(checks.violations) == 0
	checks.same_tenant
	checks.is_member
}

reasons := checks.reasons
