package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// aliasLevels writes a billion-laughs ladder: key 0 anchors a list of nine
// strings, each further key a list of nine aliases of the one before.
func aliasLevels(b *strings.Builder, indent, key string) {
	fmt.Fprintf(b, "%s%s0: &%s0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n", indent, key, key)
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(b, "%s%s%d: &%s%d [", indent, key, i, key, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "*%s%d", key, i-1)
		}
		b.WriteString("]\n")
	}
}

// aliasBomb is a policy whose last rule uses the top of an alias ladder.
func aliasBomb() []byte {
	var b strings.Builder
	b.WriteString("version: 1\n")
	aliasLevels(&b, "", "x")
	b.WriteString("rules:\n  - effect: allow\n    action: git:push\n    who: {labels: {a: b}}\n    resource: *x9\n")
	return []byte(b.String())
}

func TestHostileInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
		want string // the first error, as Pos: Msg [code]
	}{
		{"10 MB file", bytes.Repeat([]byte("# padding\n"), 1<<20),
			"p.yaml: file is 10485760 bytes; the limit is 4194304 [too-large]"},
		{"deep flow nesting", []byte("version: 1\nrules: " + strings.Repeat("[", 1<<20)),
			"p.yaml:2: exceeded max depth of 10000 [syntax]"},
		{"deep block nesting", []byte("version: 1\nrules:\n" + deepBlock(1000)),
			"p.yaml:4:5: expected a mapping, got a list [wrong-type]"},
		{"alias bomb", aliasBomb(),
			"p.yaml:2:1: unknown field \"x0\" [unknown-field]"},
		{"invalid UTF-8", []byte("version: 1\nrules:\n  - id: caf\xe9\n"),
			"p.yaml:3:12: invalid UTF-8 [invalid-utf8]"},
		{"NUL byte", []byte("version: 1\x00\n"), "p.yaml: file contains a NUL byte [invalid-utf8]"},
		{"two documents", []byte("version: 1\n---\nrules: []\n"),
			"p.yaml:2: a second YAML document; a file holds one [syntax]"},
		{"not a mapping", []byte("- version: 1\n"), "p.yaml:1:1: expected a mapping, got a list [wrong-type]"},
		{"huge scalar key count", []byte("version: 1\nprojects:\n" + strings.Repeat("  p: {}\n", 3)),
			"p.yaml:4:3: key \"p\" is set twice [duplicate-id]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("p.yaml", tt.data)
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Load returned %v, want errors", err)
			}
			e := list[0]
			if got := e.Pos.String() + ": " + e.Msg + " [" + string(e.Code) + "]"; got != tt.want {
				t.Errorf("first error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// deepBlock nests block sequences n deep.
func deepBlock(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(strings.Repeat(" ", 2*i+2) + "-\n")
	}
	return b.String()
}

// TestAliasBombIsNotExpanded checks that aliases are counted as they are
// followed, so that a bomb is refused, not expanded.
func TestAliasBombIsNotExpanded(t *testing.T) {
	t.Parallel()
	// The policy schema has no free-form values, so a bomb there meets a
	// type error at its first level; a test request's attrs are free-form.
	var b strings.Builder
	b.WriteString("tests:\n  - name: bomb\n    expect: {effect: deny}\n    request:\n      action: git:push\n      attrs:\n")
	aliasLevels(&b, "        ", "l")
	_, err := LoadTests("t.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "[too-complex]") {
		t.Fatalf("LoadTests = %v, want a too-complex error", err)
	}
}
