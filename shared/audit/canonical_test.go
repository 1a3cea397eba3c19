package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendString holds the canonical string escaping equal to
// encoding/json's without HTML escaping, for any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote`, `back\\slash`, "\n\r\t\b\f\x00\x1f\x7f", "\u2028\u2029", "caf\xe9", "é日本<>&", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := string(appendString(nil, s)); got+"\n" != want.String() {
			t.Fatalf("appendString(%q) = %s, encoding/json %s", s, got, want.String())
		}
	})
}

// TestCanonicalRoundTrip: the canonical encoding is JSON that decodes to
// the record it encodes (the stores keep it as the record).
func TestCanonicalRoundTrip(t *testing.T) {
	t.Parallel()
	r := Record{Seq: 7, ID: "id", Time: time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.FixedZone("X", 3600)), Code: DecisionAllow,
		Project: "p", Agent: "a", Session: "s", ClientSession: "c\u2028", Actor: "admin", Kind: "tool", Action: "tool:Bash",
		Resource: "echo \"hi\" <x> & y\n", Args: json.RawMessage(`{ "b": [1, 2], "a": "x" }`), Ref: "t", Effect: "allow", Rule: "r",
		Reason: "why", PolicyVersion: "v", Status: "ok", DurationMS: 9, Prev: "p1", SessionPrev: "p2"}
	c, err := Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"prev":"p1","session_prev":"p2","seq":7,"session":"s","id":"id","time":"2026-11-26T11:00:00.123456789Z",` +
		`"code":"decision.allow","project":"p","agent":"a","client_session":"c\u2028","actor":"admin","kind":"tool",` +
		`"action":"tool:Bash","resource":"echo \"hi\" <x> & y\n","args":{"b":[1,2],"a":"x"},"ref":"t","effect":"allow",` +
		`"rule":"r","reason":"why","policy_version":"v","status":"ok","duration_ms":9}`
	if string(c) != want {
		t.Fatalf("canonical:\n%s\nwant:\n%s", c, want)
	}
	var back Record
	if err := json.Unmarshal(c, &back); err != nil {
		t.Fatal(err)
	}
	c2, _ := Canonical(back)
	if !bytes.Equal(c, c2) {
		t.Errorf("decoding and re-encoding changes it:\n%s\n%s", c, c2)
	}
}
