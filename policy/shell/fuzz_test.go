package shell

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// FuzzSplit checks that Split never panics and that every command it returns
// keeps the invariants of Command.
func FuzzSplit(f *testing.F) {
	file, err := os.Open("testdata/commands.txt")
	if err != nil {
		f.Fatalf("open seed corpus: %v", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	if err := sc.Err(); err != nil {
		f.Fatalf("read seed corpus: %v", err)
	}
	for _, tc := range splitCases {
		f.Add(tc.line)
	}

	f.Fuzz(func(t *testing.T, line string) {
		cmds, err := Split(line)
		if err != nil {
			if cmds != nil {
				t.Fatalf("Split(%q) returned %d commands with error %v", line, len(cmds), err)
			}
			return
		}
		if len(cmds) > maxCommands {
			t.Fatalf("Split(%q) returned %d commands, more than %d", line, len(cmds), maxCommands)
		}
		for _, c := range cmds {
			if len(c.Args) == 0 {
				t.Fatalf("Split(%q) returned a command without Args: %+v", line, c)
			}
			if c.Line != squeeze(strings.Join(c.Args, " ")) {
				t.Fatalf("Split(%q): Line %q is not the joined, squeezed Args %q", line, c.Line, c.Args)
			}
			if !strings.HasPrefix(c.Line, c.Prefix) {
				t.Fatalf("Split(%q): Prefix %q is not a prefix of Line %q", line, c.Prefix, c.Line)
			}
			if !c.Dynamic && c.Prefix != c.Line {
				t.Fatalf("Split(%q): literal command has Prefix %q, want Line %q", line, c.Prefix, c.Line)
			}
		}
	})
}
