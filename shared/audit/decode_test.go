package audit

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeSamples are records whose canonical encodings the decoder must
// read by its fast path.
func decodeSamples() []Record {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	return []Record{
		{},
		{Seq: 1, ID: "id", Time: t0, Code: ServerStarted},
		{Seq: 42, ID: "5f0c", Time: t0.Add(time.Hour), Code: DecisionAllow, Project: "billing", Agent: "claude-code",
			Session: "a1b2c3", ClientSession: "7e57d00d-0000-4000-a000-000000000000", Kind: "tool", Action: "tool:Bash",
			Resource: `git commit -m "Fix \ handling"` + "\n\ttab", Args: json.RawMessage(`{"command":"git status","n":[1,2.5e3,true,null]}`),
			Ref: "toolu_01", Effect: "allow", Rule: "shell", Reason: "The shell is allowed; <b>&</b>", PolicyVersion: "v1",
			Prev: strings.Repeat("ab", 32), SessionPrev: strings.Repeat("cd", 32)},
		{Seq: 9, ID: "x", Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Code: ToolOutcome, Status: "error", DurationMS: -3,
			Resource: "café \u2028 日本 \U0001F600 \x7f", Args: json.RawMessage(`"a string"`)},
		{Seq: 1 << 62, Time: t0, Actor: "admin\x00\x1f", Args: json.RawMessage(`[]`), DurationMS: 1 << 40},
	}
}

// TestDecodeCanonicalFastPath: canonical encodings are read without
// encoding/json and decode to what json.Unmarshal gives.
func TestDecodeCanonicalFastPath(t *testing.T) {
	t.Parallel()
	for i, r := range decodeSamples() {
		c, err := Canonical(r)
		if err != nil {
			t.Fatal(err)
		}
		var fast Record
		if !decodeCanonical(string(c), &fast) {
			t.Errorf("sample %d: the fast path refused its canonical encoding %s", i, c)
			continue
		}
		var want Record
		if err := json.Unmarshal(c, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("sample %d: decoded\n%+v\njson.Unmarshal\n%+v", i, fast, want)
		}
	}
}

// TestDecodeCanonicalFallback: what is not canonical is decoded by
// encoding/json, errors included.
func TestDecodeCanonicalFallback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     Record
		err      string
	}{
		{name: "another key order", in: `{"seq":3,"id":"x","v":1}`, want: Record{Seq: 3, ID: "x"}},
		{name: "white space", in: `{"v":1, "seq":3}`, want: Record{Seq: 3}},
		{name: "null time", in: `{"time":null,"code":"c"}`, want: Record{Code: "c"}},
		{name: "trailing garbage", in: `{"seq":3}x`, err: "invalid character 'x' after top-level value"},
		{name: "fractional seq", in: `{"seq":3.5}`, err: "json: cannot unmarshal number 3.5 into Go struct field Record.seq of type int64"},
		{name: "empty", in: ``, err: "unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeCanonical(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzDecodeCanonical holds DecodeCanonical equal to json.Unmarshal into a
// zero Record, for any input, and to its fast path for any canonical
// encoding.
func FuzzDecodeCanonical(f *testing.F) {
	for _, r := range decodeSamples() {
		c, err := Canonical(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(c))
	}
	for _, s := range []string{
		`{"v":1,"prev":"","session_prev":"","seq":01,"session":""}`,
		`{"v":1,"prev":"\ud800","session_prev":"caf` + "\xe9" + `"}`,
		`{"v":1,"prev":"","session_prev":"","seq":1,"session":"","id":"","time":"2026-11-26T12:00:00+01:00"}`,
		`{"v":1,"prev":"","session_prev":"","seq":1,"session":"","id":"","time":"2026-11-26T12:00:00Z","code":"","project":"","agent":"","client_session":"","actor":"","kind":"","action":"","resource":"","args":{"a":[1,{"b":"]}"}]},"ref":"","effect":"","rule":"","reason":"","policy_version":"","status":"","duration_ms":0}`,
		`{"v":1,"prev":"","session_prev":"","seq":1,"session":"","id":"","time":"2026-11-26T12:00:00Z","code":"","project":"","agent":"","client_session":"","actor":"","kind":"","action":"","resource":"","args":null,"ref":"","effect":"","rule":"","reason":"","policy_version":"","status":"","duration_ms":0} `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, gotErr := DecodeCanonical(in)
		var want Record
		wantErr := json.Unmarshal([]byte(in), &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("DecodeCanonical(%q): error %v; json.Unmarshal: error %v", in, gotErr, wantErr)
		}
		if gotErr != nil {
			if gotErr.Error() != wantErr.Error() {
				t.Fatalf("DecodeCanonical(%q): error %v; json.Unmarshal: error %v", in, gotErr, wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeCanonical(%q):\n%+v\njson.Unmarshal:\n%+v", in, got, want)
		}
		if c, err := Canonical(want); err == nil && string(c) == in {
			var fast Record
			if !decodeCanonical(in, &fast) {
				t.Fatalf("the fast path refused the canonical encoding %q", in)
			}
		}
	})
}

// BenchmarkDecodeCanonical decodes a tool outcome's record of about 1 KB,
// as the stores keep it, by DecodeCanonical and by json.Unmarshal.
//
// On the 2-core development machine (AMD EPYC, go1.26.8):
//
//	fast  1,230 ns/op  810 MB/s   224 B/op   2 allocs/op
//	json  6,600–7,250 ns/op  140–150 MB/s  1,456 B/op  25 allocs/op
//
// bench/cmd/auditbench's README shows what it does to a query by session.
func BenchmarkDecodeCanonical(b *testing.B) {
	r := decodeSamples()[2]
	r.Args = json.RawMessage(`{"response":{"stdout":"ok  \tgithub.com/acme/web/internal/api\t0.412s\nok  \tgithub.com/acme/web/internal/store\t1.087s\n","stderr":"","interrupted":false,"exit_code":0}}`)
	r.Reason = strings.Repeat("The shell is allowed; the rules below carve out what is not. ", 4)
	c, err := Canonical(r)
	if err != nil {
		b.Fatal(err)
	}
	s := string(c)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			if _, err := DecodeCanonical(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			var r Record
			if err := json.Unmarshal(c, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
