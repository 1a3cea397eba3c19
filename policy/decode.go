package policy

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden/policy/yamldoc"
	"go.yaml.in/yaml/v3"
)

// Limits on the input a load accepts. They bound the time and memory of a load
// whatever the bytes; a realistic policy is far below each.
const (
	// MaxFileBytes is the largest policy or test file accepted.
	MaxFileBytes = 4 << 20
	// maxNodes bounds the YAML nodes visited, counting each alias expansion,
	// so that an alias bomb is refused instead of expanded.
	maxNodes = 1 << 20
	// maxDepth bounds the nesting of free-form values such as test attributes.
	maxDepth = 32
)

// positions maps a field path (see pathOf) to where its value was written.
type positions map[string]Position

// decoder turns a YAML node tree into the declaration types, strictly:
// unknown keys, wrong types and missing required keys are located errors.
type decoder struct {
	file  string
	errs  *errs
	pos   positions
	nodes int
}

// parseYAML checks the raw bytes and parses them into a node tree.
func parseYAML(file string, data []byte, e *errs) *yaml.Node {
	if len(data) > MaxFileBytes {
		e.add(Position{File: file}, CodeTooLarge, "split the policy or remove generated bulk",
			"file is %d bytes; the limit is %d", len(data), MaxFileBytes)
		return nil
	}
	if !utf8.Valid(data) {
		line, col := 1, 1
		for i := 0; i < len(data); {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			i += n
		}
		e.add(Position{File: file, Line: line, Column: col}, CodeInvalidUTF8, "save the file as UTF-8", "invalid UTF-8")
		return nil
	}
	if bytes.IndexByte(data, 0) >= 0 {
		e.add(Position{File: file}, CodeInvalidUTF8, "", "file contains a NUL byte")
		return nil
	}
	var root yaml.Node
	if err := yamldoc.Parse(data, &root, "file"); err != nil {
		line, msg := yamldoc.ErrorLine(err)
		e.add(Position{File: file, Line: line}, CodeSyntax, "", "%s", msg)
		return nil
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		e.add(Position{File: file, Line: 1, Column: 1}, CodeMissingField, "start with: version: 1", "file is empty")
		return nil
	}
	return root.Content[0]
}

func (d *decoder) at(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

// pathOf names a field (string elem) or list item (int elem) of parent.
func pathOf[E string | int](parent string, elem E) string {
	switch e := any(elem).(type) {
	case int:
		return parent + "[" + strconv.Itoa(e) + "]"
	case string:
		if parent == "" {
			return e
		}
		return parent + "." + e
	}
	return parent
}

// resolve follows aliases, counting every node visited.
func (d *decoder) resolve(n *yaml.Node) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, false
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes == maxNodes+1 {
		d.errs.add(d.at(n), CodeTooComplex, "do not nest aliases of aliases",
			"document expands to more than %d nodes", maxNodes)
	}
	return n, d.nodes <= maxNodes
}

var (
	typeStringList = reflect.TypeOf(StringList(nil))
	typeDuration   = reflect.TypeOf(Duration(0))
	typeLevels     = reflect.TypeOf(LevelsDecl{})
	typeTime       = reflect.TypeOf(time.Time{})
	typeAny        = reflect.TypeOf((*any)(nil)).Elem()
)

// decode fills v from n. path names v for positions and errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	n, ok := d.resolve(n)
	if !ok {
		return
	}
	d.pos[path] = d.at(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if depth > maxDepth {
		d.errs.add(d.at(n), CodeTooComplex, "", "nesting is deeper than %d levels", maxDepth)
		return
	}
	switch v.Type() {
	case typeStringList:
		d.decodeStringList(n, v, path)
		return
	case typeDuration:
		if s, ok := d.scalar(n, "a duration such as 15m"); ok {
			dur, err := parseDuration(s)
			if err != nil {
				d.errs.add(d.at(n), CodeInvalidValue, "write a duration such as 90s, 15m, 24h or 7d", "%v", err)
				return
			}
			v.SetInt(int64(dur))
		}
		return
	case typeTime:
		if s, ok := d.scalar(n, "a time such as 2026-11-26T23:30:00+01:00"); ok {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				d.errs.add(d.at(n), CodeInvalidValue, "write an RFC 3339 time such as 2026-11-26T23:30:00+01:00", "invalid time %q", s)
				return
			}
			v.Set(reflect.ValueOf(t))
		}
		return
	case typeAny:
		if val, ok := d.anyValue(n, depth); ok {
			v.Set(reflect.ValueOf(&val).Elem())
		}
		return
	case typeLevels:
		if n.Kind == yaml.ScalarNode { // one number: the pause level
			i, err := strconv.ParseInt(n.Value, 0, 64)
			if err != nil || n.Tag != "!!int" {
				d.errs.add(d.at(n), CodeWrongType, "write a number such as 8, or {alert: 5, pause: 8}",
					"expected a whole number or {alert: N, pause: M}, got %q", n.Value)
				return
			}
			v.Set(reflect.ValueOf(LevelsDecl{Pause: i, Short: true}))
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, depth)
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.wrongType(n, "a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), pathOf(path, i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path, depth)
	case reflect.String:
		if s, ok := d.scalar(n, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, "a whole number"); ok {
			i, err := strconv.ParseInt(s, 0, 64)
			if err != nil || n.Tag != "!!int" {
				d.errs.add(d.at(n), CodeWrongType, "", "expected a whole number, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, "a number"); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") || math.IsInf(f, 0) || math.IsNaN(f) {
				d.errs.add(d.at(n), CodeWrongType, "", "expected a number, got %q", s)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, "true or false"); ok {
			if n.Tag != "!!bool" {
				d.errs.add(d.at(n), CodeWrongType, "", "expected true or false, got %q", s)
				return
			}
			v.SetBool(s == "true" || s == "True" || s == "TRUE")
		}
	default:
		d.errs.add(d.at(n), CodeWrongType, "", "unsupported field type %s", v.Type())
	}
}

// scalar returns n's text when n is a scalar, and reports a type error otherwise.
func (d *decoder) scalar(n *yaml.Node, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, want)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) wrongType(n *yaml.Node, want string) {
	got := map[yaml.Kind]string{
		yaml.ScalarNode: "a value", yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping",
		yaml.DocumentNode: "a document", yaml.AliasNode: "an alias",
	}[n.Kind]
	d.errs.add(d.at(n), CodeWrongType, "", "expected %s, got %s", want, got)
}

func (d *decoder) decodeStringList(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		v.Set(reflect.ValueOf(StringList{n.Value}))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, "a string or a list of strings")
		return
	}
	list := make(StringList, 0, len(n.Content))
	for i, c := range n.Content {
		c, ok := d.resolve(c)
		if !ok {
			return
		}
		p := pathOf(path, i)
		d.pos[p] = d.at(c)
		if s, ok := d.scalar(c, "a string"); ok {
			list = append(list, s)
		}
	}
	v.Set(reflect.ValueOf(list))
}

// field describes one key of a declaration struct.
type field struct {
	name     string
	index    int
	required bool
	enum     []string
	doc      string
}

// structInfo caches fieldsOf per type.
var structInfo sync.Map

// fieldsOf lists the keys of a declaration struct, from its tags.
func fieldsOf(t reflect.Type) []field {
	if f, ok := structInfo.Load(t); ok {
		return f.([]field)
	}
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("policy")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fd := field{name: name, index: i, required: opts == "required", doc: f.Tag.Get("doc")}
		if e := f.Tag.Get("enum"); e != "" {
			fd.enum = strings.Split(e, ",")
		}
		out = append(out, fd)
	}
	structInfo.Store(t, out)
	return out
}

func fieldNames(fields []field) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, "a mapping")
		return
	}
	fields := fieldsOf(v.Type())
	var seen uint64 // bit j: fields[j] was given
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := d.resolve(n.Content[i])
		if !ok {
			return
		}
		key := k.Value
		if k.Kind != yaml.ScalarNode {
			d.wrongType(k, "a key")
			continue
		}
		j := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
		if j < 0 {
			names := fieldNames(fields)
			d.errs.add(d.at(k), CodeUnknownField, "allowed here: "+strings.Join(names, ", "),
				"unknown field %q%s", key, yamldoc.DidYouMean(key, names))
			continue
		}
		fd := &fields[j]
		if seen&(1<<j) != 0 {
			d.errs.add(d.at(k), CodeDuplicateID, "", "field %q is set twice", key)
			continue
		}
		seen |= 1 << j
		p := pathOf(path, key)
		d.decode(n.Content[i+1], v.Field(fd.index), p, depth+1)
		if fd.enum != nil {
			if s := v.Field(fd.index).String(); s != "" && !contains(fd.enum, s) {
				d.errs.add(d.pos[p], CodeInvalidValue, "one of: "+strings.Join(fd.enum, ", "),
					"invalid %s %q%s", key, s, yamldoc.DidYouMean(s, fd.enum))
			}
		}
	}
	for j, f := range fields {
		if f.required && seen&(1<<j) == 0 {
			d.errs.add(d.at(n), CodeMissingField, "", "missing required field %q", f.name)
		}
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, "a mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := d.resolve(n.Content[i])
		if !ok {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.wrongType(k, "a key")
			continue
		}
		key := reflect.ValueOf(k.Value)
		if v.MapIndex(key).IsValid() {
			d.errs.add(d.at(k), CodeDuplicateID, "", "key %q is set twice", k.Value)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(n.Content[i+1], elem, pathOf(path, k.Value), depth+1)
		v.SetMapIndex(key, elem)
	}
}

// anyValue converts a free-form node to string, int64, float64, bool, nil,
// []any or map[string]any.
func (d *decoder) anyValue(n *yaml.Node, depth int) (any, bool) {
	if depth > maxDepth {
		d.errs.add(d.at(n), CodeTooComplex, "", "nesting is deeper than %d levels", maxDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", true
		case "!!int":
			if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return i, true
			}
		case "!!float":
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return f, true
			}
		}
		return n.Value, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			c, ok := d.resolve(c)
			if !ok {
				return nil, false
			}
			val, ok := d.anyValue(c, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, val)
		}
		return out, true
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, ok := d.resolve(n.Content[i])
			if !ok {
				return nil, false
			}
			c, ok := d.resolve(n.Content[i+1])
			if !ok {
				return nil, false
			}
			val, ok := d.anyValue(c, depth+1)
			if !ok {
				return nil, false
			}
			out[k.Value] = val
		}
		return out, true
	}
	d.wrongType(n, "a value")
	return nil, false
}

// parseDuration accepts Go durations plus a whole number of days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return dur, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// decodeDoc parses data and decodes it strictly into the struct v points
// to, collecting errors in e. It returns where each field was written, or
// nil when the bytes are not a YAML document at all.
func decodeDoc(file string, data []byte, v any, e *errs) positions {
	root := parseYAML(file, data, e)
	if root == nil {
		return nil
	}
	d := &decoder{file: file, errs: e, pos: positions{}}
	d.decode(root, reflect.ValueOf(v).Elem(), "", 0)
	return d.pos
}
