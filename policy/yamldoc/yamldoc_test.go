package yamldoc

import (
	"errors"
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
