package shell

import (
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzQuote checks that a quoted word reads back as that one word.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "two words", "it's", `a"b`, "$HOME", "`x`", "a;b|c&d", "*.txt", "~/x", "line\nbreak", "back\\slash", "{a,b}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || len(s) > 1000 {
			return
		}
		for _, r := range s {
			if r == 0 {
				return
			}
		}
		cmds, err := Split("echo " + Quote(s))
		if err != nil {
			t.Fatalf("Split(echo %s): %v", Quote(s), err)
		}
		if len(cmds) != 1 || !slices.Equal(cmds[0].Args, []string{"echo", s}) || cmds[0].Dynamic {
			t.Fatalf("Quote(%q) = %s reads back as %+v", s, Quote(s), cmds)
		}
	})
}
