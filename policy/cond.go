package policy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/env"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	// Conditions name time zones; the engine must know them wherever it runs,
	// including Lambda images without a zoneinfo database.
	_ "time/tzdata"
)

// Limits on conditions, so that no policy can make evaluation slow.
const (
	maxConditionBytes = 4096
	maxConditionCost  = 10_000
)

// A condition is a compiled when: expression.
type condition struct {
	src string
	prg cel.Program
}

// conditionEnv declares what a when: expression can read. The names are part
// of the policy language (see the README).
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.StdLib(cel.StdLibSubset(zonedSubset())),
		cel.Variable("project", cel.StringType),
		cel.Variable("agent", cel.StringType),
		cel.Variable("session", cel.StringType),
		cel.Variable("labels", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("kind", cel.StringType),
		cel.Variable("action", cel.StringType),
		cel.Variable("resource", cel.StringType),
		cel.Variable("time", cel.TimestampType),
		cel.Variable("attrs", cel.MapType(cel.StringType, cel.DynType)),
		cel.ParserExpressionSizeLimit(maxConditionBytes),
		cel.ParserRecursionLimit(32),
	}
	for _, z := range zonedFuncs {
		get := z.get
		opts = append(opts, cel.Function(z.name, cel.MemberOverload(z.overload,
			[]*cel.Type{cel.TimestampType, cel.StringType}, cel.IntType,
			cel.BinaryBinding(func(ts, tz ref.Val) ref.Val {
				t, ok1 := ts.(types.Timestamp)
				name, ok2 := tz.(types.String)
				if !ok1 || !ok2 {
					return types.NewErr("no such overload")
				}
				loc, err := location(string(name))
				if err != nil {
					return types.WrapErr(err)
				}
				return types.Int(get(t.Time.In(loc)))
			}))))
	}
	return cel.NewCustomEnv(opts...)
})

// zonedFuncs are the timestamp methods that take a time zone. CEL's own
// versions load the zone on every call (file reads and parsing); these use
// zones loaded once, at compile time for literal names.
var zonedFuncs = []struct {
	name, overload string
	get            func(time.Time) int
}{
	{overloads.TimeGetFullYear, overloads.TimestampToYearWithTz, func(t time.Time) int { return t.Year() }},
	{overloads.TimeGetMonth, overloads.TimestampToMonthWithTz, func(t time.Time) int { return int(t.Month()) - 1 }},
	{overloads.TimeGetDayOfYear, overloads.TimestampToDayOfYearWithTz, func(t time.Time) int { return t.YearDay() - 1 }},
	{overloads.TimeGetDayOfMonth, overloads.TimestampToDayOfMonthZeroBasedWithTz, func(t time.Time) int { return t.Day() - 1 }},
	{overloads.TimeGetDate, overloads.TimestampToDayOfMonthOneBasedWithTz, func(t time.Time) int { return t.Day() }},
	{overloads.TimeGetDayOfWeek, overloads.TimestampToDayOfWeekWithTz, func(t time.Time) int { return int(t.Weekday()) }},
	{overloads.TimeGetHours, overloads.TimestampToHoursWithTz, func(t time.Time) int { return t.Hour() }},
	{overloads.TimeGetMinutes, overloads.TimestampToMinutesWithTz, func(t time.Time) int { return t.Minute() }},
	{overloads.TimeGetSeconds, overloads.TimestampToSecondsWithTz, func(t time.Time) int { return t.Second() }},
	{overloads.TimeGetMilliseconds, overloads.TimestampToMillisecondsWithTz, func(t time.Time) int { return t.Nanosecond() / 1e6 }},
}

// zonedSubset is the standard library without its time zone overloads,
// which zonedFuncs replace.
func zonedSubset() *env.LibrarySubset {
	var fns []*env.Function
	for _, z := range zonedFuncs {
		fns = append(fns, env.NewFunction(z.name, env.NewOverload(z.overload, nil, nil)))
	}
	return env.NewLibrarySubset().AddExcludedFunctions(fns...)
}

// zones caches loaded time zones by name.
var zones sync.Map

// location returns the named zone, or a fixed offset written as ±HH:MM.
func location(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	var loc *time.Location
	if sign, rest, ok := cutSign(name); ok {
		h, m, ok := strings.Cut(rest, ":")
		hours, err1 := strconv.Atoi(h)
		mins, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || hours > 23 || mins > 59 || len(m) != 2 {
			return nil, fmt.Errorf("invalid time zone offset %q", name)
		}
		loc = time.FixedZone(name, sign*(hours*3600+mins*60))
	} else {
		var err error
		if loc, err = time.LoadLocation(name); err != nil {
			return nil, fmt.Errorf("unknown time zone %q", name)
		}
	}
	zones.Store(name, loc)
	return loc, nil
}

func cutSign(s string) (int, string, bool) {
	switch {
	case strings.HasPrefix(s, "+"):
		return 1, s[1:], true
	case strings.HasPrefix(s, "-"):
		return -1, s[1:], true
	case strings.Contains(s, ":"):
		return 1, s, true
	}
	return 0, "", false
}

// condCache shares compiled programs between rules with the same text within
// one compile: generated policies repeat conditions, and CEL compilation is
// the costliest step of a load.
type condCache map[string]*condition

// compileCondition type-checks src as a boolean expression.
func (cc condCache) compile(src string) (*condition, error) {
	if c, ok := cc[src]; ok {
		return c, nil
	}
	if len(src) > maxConditionBytes {
		return nil, fmt.Errorf("condition is %d bytes; the limit is %d", len(src), maxConditionBytes)
	}
	env, err := conditionEnv()
	if err != nil {
		return nil, fmt.Errorf("condition environment: %w", err)
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, celError(iss)
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("condition must be true or false, but it is of type %s", checked.OutputType())
	}
	if err := checkTimeZones(checked); err != nil {
		return nil, err
	}
	prg, err := env.Program(checked, cel.CostLimit(maxConditionCost), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("condition: %w", err)
	}
	c := &condition{src: src, prg: prg}
	cc[src] = c
	return c, nil
}

// conditionError is a compile error at a place within the expression.
type conditionError struct {
	line, col int // 1-based, within the expression
	msg       string
}

func (e *conditionError) Error() string { return "condition: " + e.msg }

// celError keeps the first issue, with its place in the expression.
func celError(iss *cel.Issues) error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return fmt.Errorf("condition: %s", strings.TrimSpace(iss.String()))
	}
	e := errs[0]
	return &conditionError{line: e.Location.Line(), col: e.Location.Column() + 1, msg: e.Message}
}

// checkTimeZones refuses an unknown time zone name written as a literal, such
// as getHours("Europe/Berln"), at load instead of at evaluation, and loads
// the known ones so that evaluation finds them cached.
func checkTimeZones(checked *cel.Ast) error {
	var bad error
	ast.PostOrderVisit(checked.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if bad != nil || e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		if len(call.Args()) != 1 || call.Args()[0].Kind() != ast.LiteralKind || !isZonedFunc(call.FunctionName()) {
			return
		}
		tz, ok := call.Args()[0].AsLiteral().Value().(string)
		if !ok {
			return
		}
		if _, err := location(tz); err != nil {
			bad = fmt.Errorf("%v in %s()", err, call.FunctionName())
		}
	}))
	return bad
}

func isZonedFunc(name string) bool {
	for _, z := range zonedFuncs {
		if z.name == name {
			return true
		}
	}
	return false
}

// eval runs the condition. An error (a missing attribute, a zero request
// time, a cost overrun) is returned for the caller to fail closed on.
func (c *condition) eval(req *Request) (bool, error) {
	out, _, err := c.prg.Eval(activation{req})
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition returned %v, not a bool", out)
	}
	return bool(b), nil
}

// activation resolves the condition variables from a request without
// building a map per evaluation.
type activation struct{ req *Request }

var _ interpreter.Activation = activation{}

func (a activation) ResolveName(name string) (any, bool) {
	r := a.req
	switch name {
	case "project":
		return r.Principal.Project, true
	case "agent":
		return r.Principal.Agent, true
	case "session":
		return r.Principal.Session, true
	case "labels":
		if r.Principal.Labels == nil {
			return map[string]string{}, true
		}
		return r.Principal.Labels, true
	case "kind":
		return KindOf(r.Action).String(), true
	case "action":
		return r.Action, true
	case "resource":
		return r.Resource, true
	case "time":
		if r.Time.IsZero() {
			return nil, false
		}
		return r.Time, true
	case "attrs":
		if r.Attributes == nil {
			return map[string]any{}, true
		}
		return r.Attributes, true
	}
	return nil, false
}

func (a activation) Parent() interpreter.Activation { return nil }
