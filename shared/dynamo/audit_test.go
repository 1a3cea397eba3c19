package dynamo_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/audit/trailtest"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
)

func appended(t *testing.T, l dynamo.AuditLog, n int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i := range n {
		r := audit.Record{ID: audit.NewID(), Time: time.Date(2026, 11, 26, 12, 0, i, 0, time.UTC), Code: audit.DecisionAllow,
			Project: "web", Agent: "claude", Session: fmt.Sprint("s", i%3), Action: "tool:Bash", Resource: "make test"}
		got, err := l.Append(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != 0 {
			t.Fatalf("Append gave Seq %d before sequencing", got.Seq)
		}
		out = append(out, got)
	}
	return out
}

// verifyTrail reads the whole trail back through After in small pages and
// checks the hash chain, the session chains and that every record is
// there exactly once.
func verifyTrail(t *testing.T, l dynamo.AuditLog, want []audit.Record) {
	t.Helper()
	var v audit.Verifier
	seen := map[string]int64{}
	for after := int64(0); ; {
		page, err := l.After(t.Context(), after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if b := v.Check(r); b != nil {
				t.Fatalf("trail does not verify: %v", b)
			}
			if s, dup := seen[r.ID]; dup {
				t.Fatalf("record %s at seq %d and %d", r.ID, s, r.Seq)
			}
			seen[r.ID] = r.Seq
		}
		after = page[len(page)-1].Seq
	}
	if len(seen) != len(want) {
		t.Fatalf("trail holds %d records, want %d", len(seen), len(want))
	}
	for _, r := range want {
		if _, ok := seen[r.ID]; !ok {
			t.Errorf("record %s not in the trail", r.ID)
		}
	}
	if latest, err := l.Latest(t.Context()); err != nil || latest != int64(len(want)) {
		t.Errorf("Latest = %d, %v; want %d", latest, err, len(want))
	}
}

func TestAuditSequence(t *testing.T) {
	t.Parallel()
	db := dynamotest.DB(t, dynamotest.Client(t))
	l := db.Audit()
	recs := appended(t, l, 120)
	if latest, err := l.Latest(t.Context()); err != nil || latest != 0 {
		t.Fatalf("Latest before sequencing = %d, %v", latest, err)
	}
	// The stream delivers at least once and in no global order: batches
	// overlap and repeat records.
	n, err := l.Sequence(t.Context(), append(recs[:60:60], recs[50:70]...))
	if err != nil || n != 70 {
		t.Fatalf("Sequence = %d, %v; want 70", n, err)
	}
	n, err = l.Sequence(t.Context(), append(recs[60:], recs[:10]...))
	if err != nil || n != 50 {
		t.Fatalf("Sequence again = %d, %v; want 50 (20 were sequenced before)", n, err)
	}
	verifyTrail(t, l, recs)
	got, err := l.After(t.Context(), 0, 1)
	if err != nil || len(got) != 1 || got[0].ID != recs[0].ID || got[0].Resource != "make test" {
		t.Errorf("After(0, 1) = %+v, %v", got, err)
	}
	if _, err := l.Append(t.Context(), recs[0]); err == nil {
		t.Error("Append accepted a record ID twice")
	}
}

func TestAuditConcurrentSequencers(t *testing.T) {
	t.Parallel()
	db := dynamotest.DB(t, dynamotest.Client(t))
	l := db.Audit()
	recs := appended(t, l, 150)
	// Four sequencers (the archiver's concurrent invocations, one per
	// stream shard, and retries) take overlapping shuffled batches.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			batch := append([]audit.Record(nil), recs...)
			rand.New(rand.NewPCG(uint64(w), 1)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			if _, err := l.Sequence(t.Context(), batch); err != nil {
				t.Errorf("sequencer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	verifyTrail(t, l, recs)
}

// TestAuditReadPaths runs what the server and the archiver do with a
// sequenced trail: queries by session and by code, signed digests, the
// stored verification, tampering found, and archiving.
func TestAuditReadPaths(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := dynamotest.DB(t, dynamotest.Client(t))
	l := db.Audit()
	recs := appended(t, l, 45)
	if _, err := l.Sequence(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := l.Query(ctx, audit.Filter{Session: "s1"}, 0, 100)
	if err != nil || len(got) != 15 {
		t.Fatalf("Query(session s1) = %d records, %v; want 15", len(got), err)
	}
	for i, r := range got {
		if r.Session != "s1" || i > 0 && r.Seq <= got[i-1].Seq {
			t.Fatalf("Query(session s1)[%d] = seq %d session %s", i, r.Seq, r.Session)
		}
	}
	later, err := l.Query(ctx, audit.Filter{Session: "s1"}, got[9].Seq, 3)
	if err != nil || len(later) != 3 || later[0].Seq != got[10].Seq {
		t.Errorf("Query(session s1, after %d, limit 3) = %+v, %v", got[9].Seq, later, err)
	}
	if none, err := l.Query(ctx, audit.Filter{Code: audit.DecisionDeny}, 0, 10); err != nil || len(none) != 0 {
		t.Errorf("Query(code deny) = %d records, %v", len(none), err)
	}

	_, signer, _ := ed25519.GenerateKey(nil)
	pub := signer.Public().(ed25519.PublicKey)
	g := &audit.Digester{Trail: l, Store: l, Key: signer}
	if _, err := l.LastDigest(ctx); !errors.Is(err, audit.ErrNoDigest) {
		t.Errorf("LastDigest of a new trail: %v", err)
	}
	mustDigest := func() {
		t.Helper()
		if _, err := g.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustDigest()
	more := appended(t, l, 5)
	if _, err := l.Sequence(ctx, more); err != nil {
		t.Fatal(err)
	}
	mustDigest()
	ds, err := l.Digests(ctx)
	if err != nil || len(ds) != 2 || ds[1].ToSeq != 50 {
		t.Fatalf("Digests = %+v, %v", ds, err)
	}
	if err := l.AppendDigest(ctx, ds[0]); err == nil {
		t.Error("AppendDigest accepted a digest that does not follow the newest")
	}
	rep, err := audit.VerifyStored(ctx, l, pub, ds)
	if err != nil || !rep.OK || rep.Records != 50 {
		t.Fatalf("VerifyStored = %+v, %v", rep, err)
	}

	arch := &audit.Archiver{Trail: l, Store: audit.DirStore{Root: t.TempDir()}, Key: signer, BatchRecords: 20}
	if n, err := arch.Once(ctx); err != nil || n != 3 {
		t.Fatalf("archive: %d batches, %v; want 3 of at most 20 records", n, err)
	}
	if rep, err := audit.VerifyArchive(ctx, arch.Store, pub, nil); err != nil || !rep.OK || rep.Records != 50 {
		t.Fatalf("VerifyArchive = %+v, %v", rep, err)
	}

	// Someone with write access to the table edits a sequenced record.
	k := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "rec#" + recs[7].ID}, "sk": &types.AttributeValueMemberS{Value: "-"}}
	out, err := db.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(db.Names().Audit), Key: k})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Item["canonical"].(*types.AttributeValueMemberS)
	c.Value = strings.Replace(c.Value, "make test", "make tesT", 1)
	if _, err := db.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(db.Names().Audit), Item: out.Item}); err != nil {
		t.Fatal(err)
	}
	rep, err = audit.VerifyStored(ctx, l, pub, ds)
	if err != nil || rep.OK || rep.Break == nil || rep.Break.Seq != 8 {
		t.Errorf("VerifyStored after an edit = %+v, %v; want a break at seq 8", rep, err)
	}
}

// sequencing is the DynamoDB trail with the archiver's part done on
// demand: Settle sequences what was appended, as the stream would.
type sequencing struct {
	dynamo.AuditLog
	mu      sync.Mutex
	pending []audit.Record
}

func (s *sequencing) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	got, err := s.AuditLog.Append(ctx, r)
	if err == nil {
		s.mu.Lock()
		s.pending = append(s.pending, got)
		s.mu.Unlock()
	}
	return got, err
}

func (s *sequencing) settle(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, err := s.Sequence(t.Context(), s.pending); err != nil || n != len(s.pending) {
		t.Fatalf("Sequence = %d, %v; want %d", n, err, len(s.pending))
	}
	s.pending = nil
}

// TestTrailConformance runs the checks every audit trail passes.
func TestTrailConformance(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	trailtest.Run(t, func(t *testing.T) trailtest.Trail {
		s := &sequencing{AuditLog: dynamotest.DB(t, client).Audit()}
		return trailtest.Trail{Store: s, Settle: s.settle}
	})
}

// TestAppendAnswerLost: an append whose answer is lost after it was
// written is retried by the SDK; the retry finds the same record and the
// append succeeds (the action goes ahead, its record is in the trail
// once). Another record under an ID already taken is still refused.
func TestAppendAnswerLost(t *testing.T) {
	t.Parallel()
	lost := &dynamotest.LostAnswers{Ops: []string{"PutItem"}}
	l := dynamotest.DB(t, dynamotest.Client(t, lost.Option)).Audit()
	recs := appended(t, l, 3)
	puts := 0
	for _, c := range lost.Calls() {
		if c == "PutItem" {
			puts++
		}
	}
	if puts != 4 {
		t.Errorf("%d puts, want 4: three records, the first one's retried", puts)
	}
	other := recs[1]
	other.Resource = "rm -rf /"
	if _, err := l.Append(t.Context(), other); err == nil || !strings.Contains(err.Error(), "a record with this ID exists already") {
		t.Errorf("another record under a taken ID: %v", err)
	}
	if _, err := l.Sequence(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	verifyTrail(t, l, recs)
}
