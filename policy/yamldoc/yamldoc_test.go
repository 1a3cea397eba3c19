package yamldoc

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParse(t *testing.T) {
	t.Parallel()
	var n yaml.Node
	if err := Parse([]byte("a: 1\n---\nb: 2\n"), &n, "price file"); err == nil || err.Error() != "yaml: line 2: a second YAML document; a price file holds one" {
		t.Errorf("two documents: %v", err)
	}
	if err := Parse(nil, &n, "file"); err != nil {
		t.Errorf("empty: %v", err)
	}
	err := Parse([]byte("a: [1\n"), &n, "file")
	if line, msg := ErrorLine(err); err == nil || line == 0 || msg == "" {
		t.Errorf("syntax error %v: line %d, %q", err, line, msg)
	}
	if line, msg := ErrorLine(errors.New("yaml: line 7: did not find expected key")); line != 7 || msg != "did not find expected key" {
		t.Errorf("ErrorLine: %d %q", line, msg)
	}
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	if got := DidYouMean("efect", []string{"effect", "action"}); got != ` (did you mean "effect"?)` {
		t.Errorf("typo: %q", got)
	}
	if got := DidYouMean("zzzzzz", []string{"effect", "action"}); got != "" {
		t.Errorf("no match: %q", got)
	}
}

func TestDecode(t *testing.T) {
	type file struct {
		Hosts map[string]string `yaml:"hosts"`
	}
	var f file
	if err := Decode("x.yaml", []byte("hosts: {a: b}\n"), 100, &f); err != nil || f.Hosts["a"] != "b" {
		t.Fatalf("%+v, %v", f, err)
	}
	for src, want := range map[string]string{
		"":                             "x.yaml: the file is empty",
		"hosts: {a: b}\nother: 1\n":    "x.yaml: yaml: unmarshal errors:\n  line 2: field other not found in type yamldoc.file",
		"hosts: {a: b}\n---\nhosts:\n": "x.yaml: yaml: line 2: a second YAML document; the file holds one",
		"hosts: [\n":                   "x.yaml: yaml: line 1: did not find expected node content",
		strings.Repeat("#", 101):       "x.yaml: larger than 100 bytes",
	} {
		if err := Decode("x.yaml", []byte(src), 100, &file{}); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
