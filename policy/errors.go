package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Position is a place in a policy or test file. Line and Column start at 1;
// zero means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats the position as file:line:column, leaving out what is unknown.
func (p Position) String() string {
	s := p.File
	if s == "" {
		s = "<input>"
	}
	if p.Line > 0 {
		s += fmt.Sprintf(":%d", p.Line)
		if p.Column > 0 {
			s += fmt.Sprintf(":%d", p.Column)
		}
	}
	return s
}

// Code is the stable identifier of a kind of policy error. Codes are part of
// Warden's interface: scripts and editors may match on them.
type Code string

// The error codes. Each is documented in the README's policy reference.
const (
	CodeTooLarge         Code = "too-large"            // the file exceeds MaxFileBytes
	CodeInvalidUTF8      Code = "invalid-utf8"         // the file is not valid UTF-8
	CodeSyntax           Code = "syntax"               // the file is not well-formed YAML
	CodeTooComplex       Code = "too-complex"          // too deep, or aliases expand too far
	CodeUnknownField     Code = "unknown-field"        // a key the schema does not know
	CodeWrongType        Code = "wrong-type"           // e.g. a list where a string belongs
	CodeMissingField     Code = "missing-field"        // a required key is absent
	CodeInvalidValue     Code = "invalid-value"        // a value outside its allowed set or range
	CodeVersion          Code = "unsupported-version"  // version is not 1
	CodeDuplicateID      Code = "duplicate-id"         // two rules (or budgets, …) share an ID
	CodeBadPattern       Code = "bad-pattern"          // an action, resource or command pattern is malformed
	CodeBadCondition     Code = "bad-condition"        // a when: expression does not compile
	CodeUnknownReference Code = "unknown-reference"    // a name that nothing declares
	CodeIAMTooLarge      Code = "iam-policy-too-large" // a compiled session policy exceeds AWS's limit
	CodeSecretInPolicy   Code = "secret-in-policy"     // a credential pasted where a secret name belongs
	CodeUnreachable      Code = "unreachable"          // a rule that can never take effect as written
)

// Error is one located problem in a policy or test file.
type Error struct {
	Pos  Position
	Code Code
	Msg  string
	Hint string
}

// Error formats the error as "file:line:col: message [code]", followed by the
// hint on its own indented line when there is one.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s [%s]", e.Pos, e.Msg, e.Code)
	if e.Hint != "" {
		s += "\n\thint: " + e.Hint
	}
	return s
}

// ErrorList is every problem found in one load, sorted by position.
type ErrorList []*Error

// Error joins the errors one per line.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// sort orders the list by file, line, column, then code and message, and
// drops exact duplicates (an alias can report the same node twice).
func (l ErrorList) sort() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Msg < b.Msg
	})
	out := l[:0]
	for i, e := range l {
		if i > 0 && *e == *l[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// errs collects located errors during a load.
type errs struct {
	list ErrorList
	at   map[Position]bool
}

func (c *errs) add(pos Position, code Code, hint, format string, args ...any) {
	if c.at == nil {
		c.at = map[Position]bool{}
	}
	c.at[pos] = true
	c.list = append(c.list, &Error{Pos: pos, Code: code, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// addOnce adds the error unless one is already reported at the same place,
// so that a value the decoder refused does not also fail every later check.
func (c *errs) addOnce(pos Position, code Code, hint, format string, args ...any) {
	if !c.at[pos] {
		c.add(pos, code, hint, format, args...)
	}
}

// err returns the sorted list, or nil when nothing went wrong.
func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list.sort()
}
