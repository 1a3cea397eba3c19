// Package names is the rule for the names of projects, agents, labels,
// rules and groups, apart from the policy engine so that what only checks
// a name (the identity service, and the functions that link it) does not
// link the engine.
package names

import "regexp"

var re = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Valid reports whether s can be a name: letters, digits, '.', '_' and
// '-', at most 64, not starting with punctuation.
func Valid(s string) bool { return re.MatchString(s) }
