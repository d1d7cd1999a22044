// Package policy is passman's policy engine: Rego (OPA, Rego v1) is the one
// language for who may do what (authz), what a compliant secret looks like
// (lint) and how to respond to a leak (respond).
//
// An Engine compiles the bundled policies (policy/bundled, embedded) together
// with every *.rego file under Options.Dir, once, in strict mode, and
// prepares one query per decision. Reload recompiles and swaps the set
// atomically; on error the old set keeps deciding. Revision names the set
// ("sha256:" over module names, texts and the effective config) and every
// result carries it, so an audit entry can say which policy decided.
//
// A store's own modules (secret.PolicyModule) join the set through
// Prepare, Candidate.Test and Install (stored.go): core.Local compiles and
// tests each change before it commits it, and reloads when the store's
// policy generation moves.
//
// # Conventions
//
// User modules extend the bundled packages; they do not replace them.
//
// package passman.authz decides Authorize. Input: schema/authz.input.json.
//
//	default allow := false              # bundled; do not redeclare
//	allow if { ... }                    # any module may add allow rules
//	deny contains msg if { ... }        # optional; any deny overrides every allow
//	reasons contains msg if { ... }     # optional; explains an allow (or a deny)
//
// The engine's answer is allow && count(deny) == 0. Reasons are the deny
// messages when a deny fired, else the reasons set; a deny with neither gets
// "no policy allows <action> on <path> for <kind> <id>". Bundled: the store's
// creator (subject kind "user", id == input.store.created_by) may do
// everything, so a new store never locks its owner out; nothing else is
// allowed by default.
//
// package passman.lint decides Lint, conftest-style. Input:
// schema/lint.input.json; configuration at data.passman.config.
//
//	deny contains {"rule": r, "path": p, "msg": m} if { ... }
//	warn contains {"rule": r, "path": p, "msg": m} if { ... }
//	exception contains {"rule": r, "path": p}   # suppress rule r for path p
//	exception contains {"rule": r}              # suppress rule r everywhere
//
// Suppressed findings are reported under Excepted, not dropped. Bundled rules:
// owner_required, rotation_required, rotation_max, no_plaintext_value,
// generator_strength, tags_required (deny) and description_recommended (warn).
//
// package passman.respond decides Respond. Input: schema/respond.input.json.
//
//	actions contains {"action": a, "reason": r} if { ... }
//
// a is one of rotate, revoke_previous, notify, ignore; anything else is an
// error. The engine returns each action once, in that (execution) order,
// joining the reasons of duplicates with "; ".
//
// # Safety
//
// Decisions fail closed: Authorize returns a denying Decision along with any
// error. Built-in errors are errors (rego.StrictBuiltinErrors), not silently
// undefined rules; http.send, net.lookup_ip_addr and opa.runtime are refused
// at compile time, so a decision depends only on its input, the policy files
// and the config. Inputs never carry secret values.
package policy
