// Package yamldoc holds what Warden's strict YAML files (policies, price
// tables, the gateway's and the git remote's configurations) share:
// parsing exactly one bounded document without letting the parser crash
// the caller, refusing unknown keys, locating the parser's errors, and
// suggesting the name a typo meant.
package yamldoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse parses data, which must hold one YAML document, into n; an empty
// input leaves n empty. A panic in the parser becomes an error, and a
// second document — which a plain Unmarshal drops silently — is refused
// ("a <what> holds one").
func Parse(data []byte, n *yaml.Node, what string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("yaml: line %d: a second YAML document; a %s holds one", extra.Line, what)
}

// ErrorLine locates a parser error: the first "line N" in its message (0
// when there is none), and the message without its "yaml: line N:" prefix.
func ErrorLine(err error) (int, string) {
	msg := err.Error()
	line := 0
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		line, _ = strconv.Atoi(rest[:j])
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	return line, msg
}

// DidYouMean formats the candidate closest to s, when it is close enough
// to be a likely typo, as ` (did you mean "x"?)`; else "".
func DidYouMean(s string, candidates []string) string {
	if m := Suggest(s, candidates); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}

// Suggest returns the candidate closest to s, ignoring case, when it is
// close enough to be a likely typo; else "".
func Suggest(s string, candidates []string) string {
	best, bestDist := "", len(s)/2+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Decode decodes a configuration file, at most limit bytes holding one
// YAML document, into v, refusing a key v has no field for. Every error
// names the file; a panic in the parser is one.
func Decode(name string, data []byte, limit int, v any) (err error) {
	if len(data) > limit {
		return fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: yaml: parser failed: %v", name, r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: the file is empty", name)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", name, err)
	}
	return fmt.Errorf("%s: yaml: line %d: a second YAML document; the file holds one", name, extra.Line)
}
