package policy

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Schema returns the JSON Schema (draft 2020-12) of policy files, generated
// from the same declarations the decoder reads, so the two cannot disagree.
// Editors use it to validate and complete policy files.
func Schema() ([]byte, error) {
	return schemaFor(reflect.TypeOf(File{}), "https://warden.dev/schema/policy-v1.json", "Warden policy")
}

// TestSchema returns the JSON Schema of policy test files.
func TestSchema() ([]byte, error) {
	return schemaFor(reflect.TypeOf(TestFile{}), "https://warden.dev/schema/policy-test-v1.json", "Warden policy tests")
}

func schemaFor(t reflect.Type, id, title string) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.object(t)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = id
	root["title"] = title
	root["$defs"] = g.defs
	return json.MarshalIndent(root, "", "  ")
}

type schemaGen struct {
	defs map[string]any
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range fieldsOf(t) {
		s := g.of(t.Field(f.index).Type)
		if f.doc != "" {
			s["description"] = f.doc
		}
		if f.enum != nil {
			s["enum"] = f.enum
		}
		if c := t.Field(f.index).Tag.Get("schema"); strings.HasPrefix(c, "const=") {
			var v any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(c, "const=")), &v); err == nil {
				s["const"] = v
			}
		}
		props[f.name] = s
		if f.required {
			required = append(required, f.name)
		}
	}
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		obj["required"] = required
	}
	return obj
}

func (g *schemaGen) of(t reflect.Type) map[string]any {
	switch t {
	case typeStringList:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		}}
	case typeDuration:
		return map[string]any{"type": "string", "pattern": `^([0-9]+d|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`}
	case typeTime:
		return map[string]any{"type": "string", "format": "date-time"}
	case typeAny:
		return map[string]any{}
	case typeLevels:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "integer"},
			g.ref(t),
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.Struct:
		return g.ref(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	}
	return map[string]any{}
}

// ref defines struct type t under $defs, once, and refers to it.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	if _, ok := g.defs[t.Name()]; !ok {
		g.defs[t.Name()] = nil // reserve, for recursive types
		g.defs[t.Name()] = g.object(t)
	}
	return map[string]any{"$ref": "#/$defs/" + t.Name()}
}
