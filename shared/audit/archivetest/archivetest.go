// Package archivetest holds the checks every audit.ArchiveStore must pass
// — the local directory store and the S3 Object Lock store alike: objects
// read back as written, are never replaced (not even by a racing writer),
// list in order under their prefix, refuse keys that are not plain paths,
// and carry a whole archive that the audit.Archiver writes and
// audit.VerifyArchive verifies.
package archivetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// Run runs the checks, each as a parallel subtest on a fresh, empty store
// from newStore.
func Run(t *testing.T, newStore func(t *testing.T) audit.ArchiveStore) {
	t.Helper()
	checks := []struct {
		name string
		run  func(t *testing.T, s audit.ArchiveStore)
	}{
		{"CreateOpen", testCreateOpen},
		{"NeverReplaced", testNeverReplaced},
		{"RacingCreates", testRacingCreates},
		{"List", testList},
		{"BadKeys", testBadKeys},
		{"Archiver", testArchiver},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

// Read reads the object at key whole, failing the test on an error.
func Read(t testing.TB, s audit.ArchiveStore, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

func testCreateOpen(t *testing.T, s audit.ArchiveStore) {
	ctx := context.Background()
	big := make([]byte, 3<<20+17) // several reads' worth, not a multiple of any buffer
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	objects := map[string][]byte{
		"records/2026/11/26/00000000000000000001-00000000000000000002.jsonl.gz": []byte("batch one\n"),
		"digests/000000000001.json": []byte(`{"seq":1}` + "\n"),
		"keys/abc.json":             {},
		"records/big.bin":           big,
	}
	for key, data := range objects {
		if err := s.Create(ctx, key, data); err != nil {
			t.Fatalf("Create(%q): %v", key, err)
		}
	}
	for key, data := range objects {
		if got := Read(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("%s reads back %d bytes, want the %d written", key, len(got), len(data))
		}
	}
	for _, key := range []string{"records/none.jsonl.gz", "digests/000000000002.json", "nothing/here"} {
		if _, err := s.Open(ctx, key); !errors.Is(err, audit.ErrNotArchived) {
			t.Errorf("Open(%q) of a missing object: %v, want ErrNotArchived", key, err)
		}
	}
}

func testNeverReplaced(t *testing.T, s audit.ArchiveStore) {
	ctx := context.Background()
	const key = "records/2026/11/26/00000000000000000001-00000000000000000100.jsonl.gz"
	if err := s.Create(ctx, key, []byte("first")); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{[]byte("second"), []byte("first"), nil} {
		if err := s.Create(ctx, key, data); !errors.Is(err, audit.ErrExists) {
			t.Fatalf("Create over an existing object with %q: %v, want ErrExists", data, err)
		}
	}
	if got := Read(t, s, key); string(got) != "first" {
		t.Fatalf("after attempts to replace it the object holds %q, want %q", got, "first")
	}
}

func testRacingCreates(t *testing.T, s audit.ArchiveStore) {
	ctx := context.Background()
	const key, writers = "digests/000000000007.json", 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs[i] = s.Create(ctx, key, []byte(fmt.Sprintf("writer %d", i))) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created %s", winner, i, key)
		case err == nil:
			winner = i
		case !errors.Is(err, audit.ErrExists):
			t.Fatalf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer created %s", key)
	}
	if got, want := string(Read(t, s, key)), fmt.Sprintf("writer %d", winner); got != want {
		t.Fatalf("%s holds %q, but the writer that succeeded wrote %q", key, got, want)
	}
}

func testList(t *testing.T, s audit.ArchiveStore) {
	ctx := context.Background()
	want := []string{
		"records/2026/11/25/00000000000000000001-00000000000000000100.jsonl.gz",
		"records/2026/11/26/00000000000000000101-00000000000000000200.jsonl.gz",
		"records/2026/11/26/00000000000000000201-00000000000000000300.jsonl.gz",
		"records/2026/12/01/00000000000000000301-00000000000000000400.jsonl.gz",
		"records/x",
	}
	var digests []string
	for n := range int64(7) {
		digests = append(digests, audit.DigestKey(n+1))
	}
	others := []string{"recordsx/a", "keys/k.json", "a/records/b"}
	all := append(append(append([]string{}, want...), digests...), others...)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, key := range all {
		if err := s.Create(ctx, key, []byte(key)); err != nil {
			t.Fatalf("Create(%q): %v", key, err)
		}
	}
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"records/", want},
		{"records/2026/11/26/", want[1:3]},
		{"digests/", digests},
		{"none/", nil},
		{"records/2027/", nil},
	} {
		got, err := s.List(ctx, c.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", c.prefix, err)
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("List(%q):\n%s\nwant:\n%s", c.prefix, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

func testBadKeys(t *testing.T, s audit.ArchiveStore) {
	ctx := context.Background()
	for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", ".hidden", "a/./b", "a/.b", "a/", "a\\b", "a\x00b", strings.Repeat("k", 513)} {
		if err := s.Create(ctx, key, []byte("x")); !errors.Is(err, audit.ErrBadKey) {
			t.Errorf("Create(%q): %v, want ErrBadKey", key, err)
		}
		if _, err := s.Open(ctx, key); !errors.Is(err, audit.ErrBadKey) {
			t.Errorf("Open(%q): %v, want ErrBadKey", key, err)
		}
	}
	for _, prefix := range []string{"", "/", "../", "a//"} {
		if _, err := s.List(ctx, prefix); !errors.Is(err, audit.ErrBadKey) {
			t.Errorf("List(%q): %v, want ErrBadKey", prefix, err)
		}
	}
}

// testArchiver archives a trail through the store, verifies it, goes on
// from where the archive ends with a new archiver (a restarted server or
// a new Lambda), and refuses a foreign object in place of the next batch.
func testArchiver(t *testing.T, s audit.ArchiveStore) {
	ctx := context.Background()
	sink := &audit.MemorySink{}
	day := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	appendRecords(t, sink, day, 0, 250)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	a := &audit.Archiver{Trail: sink, Store: s, Key: key, BatchRecords: 100, Now: func() time.Time { return day }}
	if n, err := a.Once(ctx); err != nil || n != 3 {
		t.Fatalf("Once: %d batches, %v; want 3", n, err)
	}
	if n, err := a.Once(ctx); err != nil || n != 0 {
		t.Fatalf("Once with nothing new: %d batches, %v", n, err)
	}
	if rep, err := audit.VerifyArchive(ctx, s, pub, nil); err != nil || !rep.OK || rep.Records != 250 || rep.Digests != 3 {
		t.Fatalf("VerifyArchive: %+v, %v", rep, err)
	}
	if got, err := audit.ArchiveKey(ctx, s, audit.KeyID(pub)); err != nil || !got.Equal(pub) {
		t.Fatalf("published key: %v", err)
	}
	keys, err := s.List(ctx, "records/")
	if err != nil {
		t.Fatal(err)
	}
	want := "records/2026/11/26/00000000000000000001-00000000000000000100.jsonl.gz\n" +
		"records/2026/11/26/00000000000000000101-00000000000000000200.jsonl.gz\n" +
		"records/2026/11/26/00000000000000000201-00000000000000000250.jsonl.gz"
	if strings.Join(keys, "\n") != want {
		t.Fatalf("batch objects:\n%s\nwant:\n%s", strings.Join(keys, "\n"), want)
	}

	appendRecords(t, sink, day, 250, 30)
	b := &audit.Archiver{Trail: sink, Store: s, Key: key, BatchRecords: 100}
	if n, err := b.Once(ctx); err != nil || n != 1 {
		t.Fatalf("a new archiver: %d batches, %v; want 1", n, err)
	}
	if rep, err := audit.VerifyArchive(ctx, s, pub, nil); err != nil || !rep.OK || rep.Records != 280 || rep.Digests != 4 {
		t.Fatalf("VerifyArchive after the new archiver: %+v, %v", rep, err)
	}

	appendRecords(t, sink, day, 280, 5)
	foreign := audit.BatchKey(day, 281, 285)
	if err := s.Create(ctx, foreign, []byte("not these records")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Once(ctx); err == nil || !strings.Contains(err.Error(), foreign+" exists with other records") {
		t.Fatalf("Once over a foreign object: %v", err)
	}
	if got := Read(t, s, foreign); string(got) != "not these records" {
		t.Fatalf("the foreign object was changed to %q", got)
	}
}

func appendRecords(t *testing.T, sink *audit.MemorySink, day time.Time, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := audit.Record{ID: fmt.Sprintf("r%d", i), Time: day.Add(time.Duration(i) * time.Second), Code: audit.DecisionAllow,
			Project: "project-a", Session: fmt.Sprintf("s%d", i%4), Action: "tool:Bash", Resource: fmt.Sprintf("echo %d", i)}
		if _, err := sink.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}
