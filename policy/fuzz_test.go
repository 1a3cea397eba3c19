package policy

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addYAMLSeeds adds every policy and test file of the examples and testdata.
func addYAMLSeeds(f *testing.F) {
	f.Helper()
	for _, glob := range []string{"examples/*.yaml", "testdata/*/*/*.yaml", "testdata/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\nrules:\n  - {effect: allow, action: git:push, resource: \"h/o/r:refs/heads/*\"}\n"))
	f.Add(aliasBomb())
}

// FuzzLoad checks that no input makes the loader panic, and that every
// failure is a located, coded error.
func FuzzLoad(f *testing.F) {
	addYAMLSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("f.yaml", data)
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Code == "" || e.Pos.File != "f.yaml" {
					t.Fatalf("error without code or file: %+v", e)
				}
			}
			return
		}
		// A policy that loads must evaluate without trouble.
		req := &Request{Principal: Principal{Project: "p", Agent: "a"}, Action: "git:push", Resource: "h/o/r:refs/heads/main", Time: time.Unix(0, 0)}
		if d := p.Evaluate(req); d.Effect != Deny && d.Rule == "" {
			t.Fatalf("a decision other than deny without a rule: %+v", d)
		}
		p.SessionPolicy(req.Principal)
	})
}

// FuzzLoadTests does the same for test files.
func FuzzLoadTests(f *testing.F) {
	addYAMLSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := LoadTests("t.yaml", data)
		if err != nil {
			if _, ok := err.(ErrorList); !ok {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			return
		}
		for _, tc := range tf.Tests {
			if _, err := tc.Request.Request(); err != nil && tc.Request.Command == "" {
				t.Fatalf("request without command failed: %v", err)
			}
		}
	})
}

// FuzzCondition compiles arbitrary when: expressions and runs those that
// compile; neither may panic or run unbounded.
func FuzzCondition(f *testing.F) {
	file, err := os.Open("testdata/conditions/seeds.txt")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			f.Add(line)
		}
	}
	file.Close()
	req := &Request{
		Principal:  Principal{Project: "proj-1", Agent: "a", Labels: map[string]string{"env": "prod"}},
		Action:     "git:push",
		Resource:   "github.com/acme/web:refs/heads/main",
		Time:       time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC),
		Attributes: map[string]any{"size": int64(5), "count": 3.5, "tags": []any{"a"}, "m": map[string]any{"k": "v"}},
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := condCache{}.compile(src)
		if err != nil {
			return
		}
		c.eval(req)
	})
}
