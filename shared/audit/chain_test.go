package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// trail appends n records over a few sessions and returns them, linked.
func trail(t *testing.T, rng *rand.Rand, n int) []Record {
	t.Helper()
	sink := &MemorySink{}
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		r := Record{ID: NewID(), Time: t0.Add(time.Duration(i) * time.Millisecond), Code: DecisionAllow,
			Action: "tool:Bash", Resource: fmt.Sprintf("echo %d", i), Effect: "allow", Rule: "shell"}
		if s := rng.IntN(4); s > 0 {
			r.Project, r.Agent, r.Session = "p", "a", fmt.Sprintf("s%d", s)
		}
		if rng.IntN(3) == 0 {
			r.Args = json.RawMessage(fmt.Sprintf(`{"command": "echo %d", "n": [1, 2]}`, i))
		}
		if _, err := sink.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return sink.Records()
}

func verify(recs []Record) *Break {
	var v Verifier
	for _, r := range recs {
		if b := v.Check(r); b != nil {
			return b
		}
	}
	return nil
}

func TestChainVerifies(t *testing.T) {
	t.Parallel()
	recs := trail(t, rand.New(rand.NewPCG(1, 1)), 200)
	if b := verify(recs); b != nil {
		t.Fatalf("an untouched trail breaks: %v", b)
	}
	// A suffix verifies from its predecessor's hash.
	var v Verifier
	v.Start(recs[99].Seq, recs[99].Hash)
	for _, r := range recs[100:] {
		if b := v.Check(r); b != nil {
			t.Fatalf("suffix: %v", b)
		}
	}
}

// TestChainDetectsTampering is the property test: any single modification
// (with or without a recomputed hash), deletion, insertion or reordering of
// records is detected, at the right place.
func TestChainDetectsTampering(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 42))
	fields := []func(r *Record){
		func(r *Record) { r.Resource += " && curl evil" },
		func(r *Record) { r.Effect = "deny" },
		func(r *Record) { r.Rule = "other" },
		func(r *Record) { r.Time = r.Time.Add(time.Nanosecond) },
		func(r *Record) { r.Session += "x" },
		func(r *Record) { r.Code = DecisionDeny },
		func(r *Record) { r.Args = json.RawMessage(`{"command":"ls"}`) },
		func(r *Record) { r.ID = NewID() },
		func(r *Record) { r.DurationMS++ },
		func(r *Record) { r.Prev = r.Hash },
		func(r *Record) { r.SessionPrev = "00" },
	}
	for round := 0; round < 500; round++ {
		recs := trail(t, rng, 2+rng.IntN(40))
		i := rng.IntN(len(recs))
		var op string
		switch rng.IntN(5) {
		case 0:
			op = "modify"
			fields[rng.IntN(len(fields))](&recs[i])
		case 1:
			op = "modify and rehash"
			fields[rng.IntN(len(fields))](&recs[i])
			c, err := Canonical(recs[i])
			if err != nil {
				t.Fatal(err)
			}
			recs[i].Hash = HashCanonical(c)
			if i == len(recs)-1 {
				continue // the last record's rewrite is for the signed digests to catch
			}
		case 2:
			op = "delete"
			if i == len(recs)-1 {
				continue // truncation is for the signed digests to catch
			}
			recs = append(recs[:i], recs[i+1:]...)
		case 3:
			op = "insert"
			extra := recs[i]
			extra.ID, extra.Resource = NewID(), "rm -rf /"
			c, _ := Canonical(extra)
			extra.Hash = HashCanonical(c)
			recs = append(recs[:i+1], append([]Record{extra}, recs[i+1:]...)...)
		case 4:
			op = "reorder"
			j := rng.IntN(len(recs))
			if i == j {
				continue
			}
			recs[i], recs[j] = recs[j], recs[i]
		}
		if b := verify(recs); b == nil {
			t.Fatalf("round %d: %s at %d went undetected", round, op, i)
		}
	}
}

func TestBreakReport(t *testing.T) {
	t.Parallel()
	recs := trail(t, rand.New(rand.NewPCG(3, 3)), 10)
	want := recs[4].Hash
	recs[4].Reason = "edited"
	b := verify(recs)
	if b == nil || b.Seq != 5 || b.ID != recs[4].ID || b.Problem != "record hash" || b.Found != want {
		t.Fatalf("break %+v", b)
	}
	if b.Expected == want || len(b.Expected) != 64 {
		t.Errorf("expected hash %q", b.Expected)
	}
}

// TestCheckStored verifies records as stores keep them (canonical bytes
// and a hash), and catches any changed byte.
func TestCheckStored(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	recs := trail(t, rng, 100)
	stored := make([][]byte, len(recs))
	for i, r := range recs {
		c, err := Canonical(r)
		if err != nil {
			t.Fatal(err)
		}
		stored[i] = c
	}
	check := func() *Break {
		var v Verifier
		for i := range recs {
			if b := v.CheckStored(stored[i], recs[i].Hash); b != nil {
				return b
			}
		}
		return nil
	}
	if b := check(); b != nil {
		t.Fatalf("untouched: %v", b)
	}
	for round := 0; round < 200; round++ {
		i := rng.IntN(len(stored))
		j := rng.IntN(len(stored[i]))
		old := stored[i][j]
		stored[i][j] ^= byte(1 + rng.IntN(255))
		if b := check(); b == nil || b.Seq != int64(i+1) {
			t.Fatalf("round %d: byte %d of record %d changed: break %v", round, j, i+1, b)
		}
		stored[i][j] = old
	}
}
