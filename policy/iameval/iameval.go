// Package iameval evaluates IAM policy documents as AWS documents their
// evaluation, for identity-based and session policies: an explicit Deny
// wins, then an Allow, else the implicit deny. It is independent of
// Warden's policy compiler, so that tests can check what the compiler
// hands to AWS against what AWS would decide, and so that stand-ins for
// AWS can decide requests. Evaluation is pure: the request's context keys
// come in as an argument.
//
// Action names match case-insensitively, resources case-sensitively; in
// both, * matches any run of characters and ? one character. Condition
// keys are case-insensitive, as in IAM. The supported condition operators
// are the String, Date, Bool and Null families, each (but Null) also with
// IfExists. Set operators (ForAnyValue:, ForAllValues:), the other
// operator families, policy variables (${...}) and Principal elements are
// refused by Parse, so that nothing is evaluated differently from AWS
// without saying so.
package iameval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decision is the outcome of evaluating a document.
type Decision int

// The decisions, from the weakest.
const (
	// ImplicitDeny: no statement allows or denies the request.
	ImplicitDeny Decision = iota
	// Allow: a statement allows it and none denies it.
	Allow
	// Deny: a statement denies it explicitly.
	Deny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	case ImplicitDeny:
		return "ImplicitDeny"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// Document is a policy document, as Parse reads it.
type Document struct {
	Version    string
	Statements []Statement
}

// Statement is one statement of a document. Exactly one of Actions and
// NotActions is set, and one of Resources and NotResources.
type Statement struct {
	Sid string
	// Deny is true for "Effect": "Deny".
	Deny                    bool
	Actions, NotActions     []string
	Resources, NotResources []string
	// Conditions must all hold for the statement to apply.
	Conditions []Condition

	// The action patterns lower-cased, as matched.
	actions, notActions []string
}

// Condition is one key of one condition operator: Key compared with
// Values by Operator ("StringEquals", "DateLessThanIfExists", ...).
type Condition struct {
	Operator string
	Key      string
	Values   []string

	op       operator
	ifExists bool
}

// The supported operators.
type operator int

const (
	opStringEquals operator = iota
	opStringNotEquals
	opStringEqualsIgnoreCase
	opStringNotEqualsIgnoreCase
	opStringLike
	opStringNotLike
	opDateEquals
	opDateNotEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opNull
)

var operators = map[string]operator{
	"StringEquals":              opStringEquals,
	"StringNotEquals":           opStringNotEquals,
	"StringEqualsIgnoreCase":    opStringEqualsIgnoreCase,
	"StringNotEqualsIgnoreCase": opStringNotEqualsIgnoreCase,
	"StringLike":                opStringLike,
	"StringNotLike":             opStringNotLike,
	"DateEquals":                opDateEquals,
	"DateNotEquals":             opDateNotEquals,
	"DateLessThan":              opDateLessThan,
	"DateLessThanEquals":        opDateLessThanEquals,
	"DateGreaterThan":           opDateGreaterThan,
	"DateGreaterThanEquals":     opDateGreaterThanEquals,
	"Bool":                      opBool,
	"Null":                      opNull,
}

// negated operators hold when the key is absent.
func (o operator) negated() bool {
	return o == opStringNotEquals || o == opStringNotEqualsIgnoreCase || o == opStringNotLike || o == opDateNotEquals
}

func (o operator) date() bool { return o >= opDateEquals && o <= opDateGreaterThanEquals }

// Parse reads a policy document. It refuses what IAM refuses as malformed
// (no Effect, both Action and NotAction, an unknown element) and what this
// package does not evaluate, naming the statement.
func Parse(doc []byte) (*Document, error) {
	var top map[string]json.RawMessage
	if err := strictUnmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	if top == nil {
		return nil, errors.New("policy document: not a JSON object")
	}
	d := &Document{}
	for k, v := range top {
		switch k {
		case "Version":
			if err := json.Unmarshal(v, &d.Version); err != nil || (d.Version != "2012-10-17" && d.Version != "2008-10-17") {
				return nil, fmt.Errorf("policy document: Version %s: want \"2012-10-17\" or \"2008-10-17\"", v)
			}
		case "Id":
			var id string
			if err := json.Unmarshal(v, &id); err != nil {
				return nil, fmt.Errorf("policy document: Id %s is not a string", v)
			}
		case "Statement":
		default:
			return nil, fmt.Errorf("policy document: unknown element %q", k)
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, errors.New("policy document: no Statement")
	}
	var list []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("policy document: Statement: %w", err)
		}
	} else {
		list = []json.RawMessage{raw}
	}
	for i, r := range list {
		st, err := parseStatement(r)
		if err != nil {
			name := fmt.Sprintf("statement %d", i+1)
			if st.Sid != "" {
				name += fmt.Sprintf(" (Sid %q)", st.Sid)
			}
			return nil, fmt.Errorf("policy document: %s: %w", name, err)
		}
		d.Statements = append(d.Statements, st)
	}
	return d, nil
}

// strictUnmarshal decodes one JSON value and refuses anything after it.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("data after the JSON value")
	}
	return nil
}

var sidRE = regexp.MustCompile(`^[A-Za-z0-9]*$`)

// parseStatement reads one statement; on error, the Sid if it was read.
func parseStatement(raw json.RawMessage) (Statement, error) {
	var st Statement
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return st, fmt.Errorf("not a JSON object")
	}
	if v, ok := m["Sid"]; ok {
		var sid string
		if err := json.Unmarshal(v, &sid); err != nil {
			return st, fmt.Errorf("Sid %s is not a string", v)
		}
		if !sidRE.MatchString(sid) {
			return st, fmt.Errorf("Sid %q: IAM takes ASCII letters and digits only", sid)
		}
		st.Sid = sid
	}
	for k, v := range m {
		var err error
		switch k {
		case "Sid":
		case "Effect":
			var effect string
			_ = json.Unmarshal(v, &effect)
			switch effect {
			case "Allow":
			case "Deny":
				st.Deny = true
			default:
				err = fmt.Errorf("Effect %s: want \"Allow\" or \"Deny\"", v)
			}
		case "Action":
			st.Actions, err = stringOrList(k, v)
		case "NotAction":
			st.NotActions, err = stringOrList(k, v)
		case "Resource":
			st.Resources, err = stringOrList(k, v)
		case "NotResource":
			st.NotResources, err = stringOrList(k, v)
		case "Condition":
			st.Conditions, err = parseConditions(v)
		case "Principal", "NotPrincipal":
			err = fmt.Errorf("%s is for resource-based policies, which this package does not evaluate", k)
		default:
			err = fmt.Errorf("unknown element %q", k)
		}
		if err != nil {
			return st, err
		}
	}
	switch {
	case m["Effect"] == nil:
		return st, errors.New("no Effect")
	case (st.Actions == nil) == (st.NotActions == nil):
		return st, errors.New("want exactly one of Action and NotAction")
	case (st.Resources == nil) == (st.NotResources == nil):
		return st, errors.New("want exactly one of Resource and NotResource")
	}
	for _, a := range slices.Concat(st.Actions, st.NotActions) {
		if a != "*" && !strings.Contains(a, ":") {
			return st, fmt.Errorf("action %q: want service:action or *", a)
		}
	}
	for _, r := range slices.Concat(st.Resources, st.NotResources) {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return st, fmt.Errorf("resource %q: want an ARN or *", r)
		}
	}
	st.actions, st.notActions = lower(st.Actions), lower(st.NotActions)
	return st, nil
}

func lower(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(s)
	}
	return out
}

// stringOrList reads a string or a non-empty array of strings.
func stringOrList(name string, v json.RawMessage) ([]string, error) {
	if string(bytes.TrimSpace(v)) == "null" {
		return nil, fmt.Errorf("%s is null", name)
	}
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, checkText(name, one)
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil || len(list) == 0 {
		return nil, fmt.Errorf("%s %s: want a string or a non-empty array of strings", name, v)
	}
	for _, s := range list {
		if err := checkText(name, s); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// checkText refuses policy variables, which IAM would substitute.
func checkText(name, s string) error {
	if strings.Contains(s, "${") {
		return fmt.Errorf("%s %q: policy variables are not supported", name, s)
	}
	return nil
}

// parseConditions reads a Condition block, sorted by operator and key so
// that evaluation does not depend on the order of a JSON object.
func parseConditions(v json.RawMessage) ([]Condition, error) {
	var block map[string]map[string]json.RawMessage
	if err := json.Unmarshal(v, &block); err != nil {
		return nil, fmt.Errorf("Condition: want an object of operators, each an object of keys: %w", err)
	}
	var out []Condition
	for name, keys := range block {
		base, ifExists := strings.CutSuffix(name, "IfExists")
		op, ok := operators[base]
		if !ok || (ifExists && op == opNull) {
			return nil, fmt.Errorf("Condition: operator %q is not supported (supported: the String, Date, Bool and Null operators, with IfExists)", name)
		}
		for key, raw := range keys {
			if key == "" {
				return nil, fmt.Errorf("Condition: %s: an empty key", name)
			}
			if err := checkText("Condition key", key); err != nil {
				return nil, err
			}
			values, err := conditionValues(raw)
			if err != nil {
				return nil, fmt.Errorf("Condition: %s: %s: %w", name, key, err)
			}
			for _, val := range values {
				if err := checkValue(op, val); err != nil {
					return nil, fmt.Errorf("Condition: %s: %s: %w", name, key, err)
				}
			}
			out = append(out, Condition{Operator: name, Key: key, Values: values, op: op, ifExists: ifExists})
		}
	}
	slices.SortFunc(out, func(a, b Condition) int {
		return strings.Compare(a.Operator+"\x00"+a.Key, b.Operator+"\x00"+b.Key)
	})
	return out, nil
}

// conditionValues reads a value or a non-empty array of values: strings,
// or booleans and numbers, which IAM compares as their text.
func conditionValues(raw json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		list = []json.RawMessage{raw}
	} else if len(list) == 0 {
		return nil, errors.New("an empty list of values")
	}
	var out []string
	for _, r := range list {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case string:
			if err := checkText("value", v); err != nil {
				return nil, err
			}
			out = append(out, v)
		case bool, float64:
			out = append(out, string(bytes.TrimSpace(r)))
		default:
			return nil, fmt.Errorf("value %s: want a string, number or boolean", r)
		}
	}
	return out, nil
}

// checkValue refuses values the operator cannot compare.
func checkValue(op operator, v string) error {
	switch {
	case op.date():
		if _, ok := parseDate(v); !ok {
			return fmt.Errorf("%q is not a date (ISO 8601 or seconds since the epoch)", v)
		}
	case op == opBool || op == opNull:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return fmt.Errorf("%q: want true or false", v)
		}
	}
	return nil
}

// parseDate reads an ISO 8601 date or time, or seconds since the epoch.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// Decide evaluates the document for action on resource, with the
// request's condition keys in ctx (as "aws:SourceIdentity",
// "aws:PrincipalTag/team"; names are case-insensitive).
func (d *Document) Decide(action, resource string, ctx map[string]string) Decision {
	var keys map[string]string
	action = strings.ToLower(action)
	allowed := false
	for i := range d.Statements {
		st := &d.Statements[i]
		if !st.matchesAction(action) || !st.matchesResource(resource) {
			continue
		}
		if len(st.Conditions) > 0 && keys == nil {
			keys = make(map[string]string, len(ctx))
			for k, v := range ctx {
				keys[strings.ToLower(k)] = v
			}
		}
		if !st.conditionsHold(keys) {
			continue
		}
		if st.Deny {
			return Deny
		}
		allowed = true
	}
	if allowed {
		return Allow
	}
	return ImplicitDeny
}

// matchesAction matches a lower-cased action.
func (st *Statement) matchesAction(action string) bool {
	if st.notActions != nil {
		return !anyMatch(st.notActions, action)
	}
	return anyMatch(st.actions, action)
}

func (st *Statement) matchesResource(resource string) bool {
	if st.NotResources != nil {
		return !anyMatch(st.NotResources, resource)
	}
	return anyMatch(st.Resources, resource)
}

func anyMatch(pats []string, s string) bool {
	for _, p := range pats {
		if Match(p, s) {
			return true
		}
	}
	return false
}

// conditionsHold reports whether every condition holds; keys are
// lower-cased.
func (st *Statement) conditionsHold(keys map[string]string) bool {
	for i := range st.Conditions {
		if !st.Conditions[i].holds(keys) {
			return false
		}
	}
	return true
}

func (c *Condition) holds(keys map[string]string) bool {
	got, present := keys[strings.ToLower(c.Key)]
	if c.op == opNull {
		// "true": the key must be absent; "false": present.
		return slices.ContainsFunc(c.Values, func(v string) bool { return strings.EqualFold(v, "true") != present })
	}
	if !present {
		return c.ifExists || c.op.negated()
	}
	switch c.op {
	case opStringNotEquals, opStringNotEqualsIgnoreCase, opStringNotLike, opDateNotEquals:
		return !slices.ContainsFunc(c.Values, func(v string) bool { return c.op.compare(got, v) })
	}
	return slices.ContainsFunc(c.Values, func(v string) bool { return c.op.compare(got, v) })
}

// compare applies the operator's positive form to the request's value
// got and the policy's value want.
func (o operator) compare(got, want string) bool {
	switch o {
	case opStringEquals, opStringNotEquals:
		return got == want
	case opStringEqualsIgnoreCase, opStringNotEqualsIgnoreCase:
		return strings.EqualFold(got, want)
	case opStringLike, opStringNotLike:
		return Match(want, got)
	case opBool:
		return strings.EqualFold(got, want)
	}
	g, ok1 := parseDate(got)
	w, ok2 := parseDate(want)
	if !ok1 || !ok2 {
		return false
	}
	switch o {
	case opDateEquals, opDateNotEquals:
		return g.Equal(w)
	case opDateLessThan:
		return g.Before(w)
	case opDateLessThanEquals:
		return !g.After(w)
	case opDateGreaterThan:
		return g.After(w)
	case opDateGreaterThanEquals:
		return !g.Before(w)
	}
	return false
}

// Match reports whether s matches the wildcard pattern pat, in which *
// matches any run of characters and ? exactly one; the rest matches
// itself, byte for byte.
func Match(pat, s string) bool {
	px, sx := 0, 0
	// Where to resume after the last *: the pattern after it, and one
	// character further into s.
	starPx, starSx := -1, -1
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			c, w := utf8.DecodeRuneInString(pat[px:])
			switch {
			case c == '*':
				starPx, starSx = px, sx
				px += w
				continue
			case sx < len(s):
				_, sw := utf8.DecodeRuneInString(s[sx:])
				if c == '?' || pat[px:px+w] == s[sx:sx+sw] {
					px += w
					sx += sw
					continue
				}
			}
		}
		if starPx >= 0 && starSx < len(s) {
			_, sw := utf8.DecodeRuneInString(s[starSx:])
			starSx += sw
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}
