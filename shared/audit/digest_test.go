package audit

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

func TestDigests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	sink := &MemorySink{}
	key := testKey(1)
	g := &Digester{Trail: sink, Store: sink, Key: key, Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
	for round := 0; round < 3; round++ {
		for _, r := range trail(t, rng, 20) {
			r.Seq, r.Prev, r.SessionPrev, r.Hash = 0, "", "", ""
			if _, err := sink.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		d, err := g.Once(ctx)
		if err != nil || d.Seq != int64(round+1) || d.ToSeq != int64(20*(round+1)) {
			t.Fatalf("round %d: digest %+v, %v", round, d, err)
		}
	}
	if d, err := g.Once(ctx); err != nil || d.Seq != 0 {
		t.Fatalf("a digest with nothing new: %+v %v", d, err)
	}
	digests, _ := sink.Digests(ctx)
	recs := sink.Records()
	pub := key.Public().(ed25519.PublicKey)
	if err := CheckDigests(pub, digests, recs); err != nil {
		t.Fatalf("untouched: %v", err)
	}

	// A rewrite that keeps the chain intact is caught by the signed heads.
	rewritten := append([]Record(nil), recs...)
	rewritten[30].Resource = "rm -rf /"
	var prev, sessionPrev = rewritten[29].Hash, ""
	heads := map[string]string{}
	for i := range rewritten {
		if i < 30 {
			if s := rewritten[i].Session; s != "" {
				heads[s] = rewritten[i].Hash
			}
			continue
		}
		sessionPrev = heads[rewritten[i].Session]
		Link(&rewritten[i], prev, sessionPrev)
		prev = rewritten[i].Hash
		if s := rewritten[i].Session; s != "" {
			heads[s] = rewritten[i].Hash
		}
	}
	if b := verify(rewritten); b != nil {
		t.Fatalf("the rewrite should keep the chain intact: %v", b)
	}
	tests := []struct {
		name    string
		pub     ed25519.PublicKey
		digests []Digest
		records []Record
		want    string
	}{
		{"rewritten history", pub, digests, rewritten, "digest 2: record 40 is missing or changed"},
		{"truncated", pub, digests, recs[:50], "digest 3: record 60 is missing or changed"},
		{"other key", testKey(2).Public().(ed25519.PublicKey), digests, recs, "digest 1 is signed by key"},
		{"digest dropped", pub, []Digest{digests[0], digests[2]}, recs, "digest 3 is out of order"},
		{"forged signature", pub, append(append([]Digest(nil), digests[:1]...), func() Digest { d := digests[1]; d.Head = recs[38].Hash; return d }()), recs, "digest 2: bad signature"},
	}
	for _, tt := range tests {
		err := CheckDigests(tt.pub, tt.digests, tt.records)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
