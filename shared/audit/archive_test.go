package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// archiveTrail appends n records to sink, over a few sessions.
func archiveTrail(t *testing.T, sink *MemorySink, rng *rand.Rand, n int) {
	t.Helper()
	for _, r := range trail(t, rng, n) {
		r.Seq, r.Prev, r.SessionPrev, r.Hash = 0, "", "", ""
		if _, err := sink.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func newArchive(t *testing.T, n int) (*MemorySink, DirStore, *Archiver, ed25519.PublicKey) {
	t.Helper()
	sink := &MemorySink{}
	archiveTrail(t, sink, rand.New(rand.NewPCG(7, 7)), n)
	store := DirStore{Root: t.TempDir()}
	key := testKey(3)
	a := &Archiver{Trail: sink, Store: store, Key: key, BatchRecords: 100,
		Now: func() time.Time { return time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC) }}
	return sink, store, a, key.Public().(ed25519.PublicKey)
}

func TestArchive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink, store, a, pub := newArchive(t, 250)
	if n, err := a.Once(ctx); err != nil || n != 3 {
		t.Fatalf("Once: %d batches, %v; want 3", n, err)
	}
	if n, err := a.Once(ctx); err != nil || n != 0 {
		t.Fatalf("Once with nothing new: %d batches, %v", n, err)
	}
	rep, err := VerifyArchive(ctx, store, pub, nil)
	if err != nil || !rep.OK || rep.Records != 250 || rep.Digests != 3 {
		t.Fatalf("VerifyArchive: %+v, %v", rep, err)
	}

	// The layout is the documented one, and the key is published.
	keys, _ := store.List(ctx, "records/")
	want := []string{
		"records/2026/11/26/00000000000000000001-00000000000000000100.jsonl.gz",
		"records/2026/11/26/00000000000000000101-00000000000000000200.jsonl.gz",
		"records/2026/11/26/00000000000000000201-00000000000000000250.jsonl.gz",
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Fatalf("objects:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	if got, err := ArchiveKey(ctx, store, KeyID(pub)); err != nil || !got.Equal(pub) {
		t.Fatalf("published key: %v", err)
	}
	// Each line of an object is a record's canonical encoding.
	rc, _ := store.Open(ctx, want[2])
	object, _ := io.ReadAll(rc)
	rc.Close()
	content, err := decompress(object)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
	recs := sink.Records()
	if c, _ := Canonical(recs[249]); len(lines) != 50 || lines[49] != string(c) {
		t.Fatalf("last object: %d lines, last %q", len(lines), lines[len(lines)-1])
	}

	// A new archiver (a restarted server) goes on where the archive ends.
	archiveTrail(t, sink, rand.New(rand.NewPCG(8, 8)), 30)
	b := &Archiver{Trail: sink, Store: store, Key: a.Key, BatchRecords: 100}
	if n, err := b.Once(ctx); err != nil || n != 1 {
		t.Fatalf("restarted: %d batches, %v", n, err)
	}
	if rep, err := VerifyArchive(ctx, store, pub, nil); err != nil || !rep.OK || rep.Records != 280 || rep.Digests != 4 {
		t.Fatalf("VerifyArchive after restart: %+v, %v", rep, err)
	}
	if rep, _ := VerifyArchive(ctx, store, testKey(4).Public().(ed25519.PublicKey), nil); rep.OK || !strings.Contains(rep.DigestError, "signed by key") {
		t.Fatalf("verified with another key: %+v", rep)
	}
}

func TestArchiveObjectsAreImmutable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := DirStore{Root: t.TempDir()}
	if err := store.Create(ctx, "records/a.jsonl.gz", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, "records/a.jsonl.gz", []byte("second")); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v, want ErrExists", err)
	}
	data, _ := os.ReadFile(filepath.Join(store.Root, "records", "a.jsonl.gz"))
	fi, _ := os.Stat(filepath.Join(store.Root, "records", "a.jsonl.gz"))
	if string(data) != "first" || fi.Mode().Perm() != 0o400 {
		t.Fatalf("after an overwrite attempt: %q, mode %v", data, fi.Mode())
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", ".hidden", "a/./b"} {
		if err := store.Create(ctx, bad, nil); err == nil {
			t.Errorf("Create(%q) accepted", bad)
		}
	}
	if _, err := store.Open(ctx, "records/none"); !errors.Is(err, ErrNotArchived) {
		t.Fatalf("Open of a missing object: %v", err)
	}
}

// failingStore fails the Create of keys with a prefix, once.
type failingStore struct {
	DirStore
	prefix string
}

func (f *failingStore) Create(ctx context.Context, key string, data []byte) error {
	if f.prefix != "" && strings.HasPrefix(key, f.prefix) {
		f.prefix = ""
		return errors.New("disk full")
	}
	return f.DirStore.Create(ctx, key, data)
}

func TestArchiveResumesAfterACrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, store, a, pub := newArchive(t, 150)
	// The first batch's object is written, its digest is not.
	fs := &failingStore{DirStore: store, prefix: "digests/"}
	a.Store = fs
	if n, err := a.Once(ctx); err == nil || n != 0 || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Once with a failing digest write: %d, %v", n, err)
	}
	// The next round finds the object and uses it.
	if n, err := a.Once(ctx); err != nil || n != 2 {
		t.Fatalf("Once after the failure: %d, %v", n, err)
	}
	if rep, err := VerifyArchive(ctx, store, pub, nil); err != nil || !rep.OK || rep.Records != 150 {
		t.Fatalf("VerifyArchive: %+v, %v", rep, err)
	}
}

func TestArchiveRefusesAForeignObject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink, store, a, _ := newArchive(t, 50)
	recs := sink.Records()
	key := BatchKey(recs[0].Time, 1, 50)
	if err := store.Create(ctx, key, compress([]byte("{}\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Once(ctx); err == nil || !strings.Contains(err.Error(), "exists with other records") {
		t.Fatalf("Once over a foreign object: %v", err)
	}
}

// TestVerifyArchiveDetectsTampering changes an archive in each way the
// file system allows and checks that VerifyArchive reports it.
func TestVerifyArchiveDetectsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rewrite := func(t *testing.T, store DirStore, key string, change func([]byte) []byte) {
		t.Helper()
		name := filepath.Join(store.Root, filepath.FromSlash(key))
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(name, 0o600)
		if err := os.WriteFile(name, change(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	recompressed := func(change func(string) string) func([]byte) []byte {
		return func(b []byte) []byte {
			content, err := decompress(b)
			if err != nil {
				panic(err)
			}
			return compress([]byte(change(string(content))))
		}
	}
	object2 := "records/2026/11/26/00000000000000000101-00000000000000000200.jsonl.gz"
	tests := []struct {
		name   string
		tamper func(t *testing.T, store DirStore)
		want   string
	}{
		{"a flipped byte", func(t *testing.T, s DirStore) {
			rewrite(t, s, object2, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		}, "batch 2: " + object2 + " has SHA-256"},
		{"a record changed and recompressed", func(t *testing.T, s DirStore) {
			rewrite(t, s, object2, recompressed(func(c string) string { return strings.Replace(c, "echo 150", "echo 666", 1) }))
		}, "batch 2: " + object2 + " has SHA-256"},
		{"the last record of a batch changed", func(t *testing.T, s DirStore) {
			rewrite(t, s, object2, recompressed(func(c string) string { return strings.Replace(c, "echo 199", "echo 666", 1) }))
		}, "batch 2: " + object2 + " has SHA-256"},
		{"a record deleted", func(t *testing.T, s DirStore) {
			rewrite(t, s, object2, recompressed(func(c string) string {
				lines := strings.SplitAfter(c, "\n")
				return strings.Join(append(lines[:10:10], lines[11:]...), "")
			}))
		}, "batch 2: " + object2 + " has SHA-256"},
		{"an object deleted", func(t *testing.T, s DirStore) {
			os.Remove(filepath.Join(s.Root, filepath.FromSlash(object2)))
		}, "batch 2: object " + object2 + " is missing"},
		{"a digest deleted", func(t *testing.T, s DirStore) {
			os.Remove(filepath.Join(s.Root, "digests", "000000000002.json"))
		}, "not numbered 1 to 2"},
		{"a digest's range changed", func(t *testing.T, s DirStore) {
			rewrite(t, s, DigestKey(2), func(b []byte) []byte { return bytes.Replace(b, []byte(`"to_seq": 200`), []byte(`"to_seq": 199`), 1) })
		}, "digest 2: bad signature"},
		{"objects swapped", func(t *testing.T, s DirStore) {
			a := filepath.Join(s.Root, filepath.FromSlash(object2))
			b := filepath.Join(s.Root, "records/2026/11/26/00000000000000000001-00000000000000000100.jsonl.gz")
			da, _ := os.ReadFile(a)
			db, _ := os.ReadFile(b)
			os.Chmod(a, 0o600)
			os.Chmod(b, 0o600)
			os.WriteFile(a, db, 0o600)
			os.WriteFile(b, da, 0o600)
		}, "batch 1: records/2026/11/26/00000000000000000001-00000000000000000100.jsonl.gz has SHA-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, store, a, pub := newArchive(t, 300)
			if _, err := a.Once(ctx); err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, store)
			rep, err := VerifyArchive(ctx, store, pub, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := rep.DigestError
			if rep.Break != nil {
				got = rep.Break.Error()
			}
			if rep.OK || !strings.Contains(got, tt.want) {
				t.Fatalf("VerifyArchive: ok=%v %q, want %q", rep.OK, got, tt.want)
			}
		})
	}
}

// TestVerifyArchiveChecksRecords forges the last batch with the signing
// key itself — a new object, its checksum in a re-signed digest — as a
// faulty archiver would write it: the records inside are still checked.
func TestVerifyArchiveChecksRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(lines []string) []string
		want   string
	}{
		{"a record changed", func(l []string) []string {
			l[5] = strings.Replace(l[5], "echo 205", "echo 666", 1)
			return l
		}, "seq 207 (record"},
		{"the last record changed", func(l []string) []string {
			l[49] = strings.Replace(l[49], "echo 249", "echo 666", 1)
			return l
		}, "digest 3: record 250 is missing or changed"},
		{"a record deleted", func(l []string) []string { return append(l[:10:10], l[11:]...) }, "sequence: expected 211, found 212"},
		{"two records swapped", func(l []string) []string { l[3], l[4] = l[4], l[3]; return l }, "sequence: expected 204, found 205"},
		{"a record inserted", func(l []string) []string { return append(l[:10:10], l[9:]...) }, "sequence: expected 211, found 210"},
		{"not a record", func(l []string) []string { l[0] = `{"v":2}`; return l }, "unreadable record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, store, a, pub := newArchive(t, 250)
			if _, err := a.Once(ctx); err != nil {
				t.Fatal(err)
			}
			d, err := readDigest(ctx, store, 3)
			if err != nil {
				t.Fatal(err)
			}
			rc, _ := store.Open(ctx, d.Object.Key)
			object, _ := io.ReadAll(rc)
			rc.Close()
			content, _ := decompress(object)
			lines := tt.change(strings.Split(strings.TrimSuffix(string(content), "\n"), "\n"))
			forged := compress([]byte(strings.Join(lines, "\n") + "\n"))
			sum := sha256.Sum256(forged)
			d.Object.SHA256, d.Object.Size = hex.EncodeToString(sum[:]), int64(len(forged))
			d.Sign(a.Key)
			data, _ := json.Marshal(d)
			for key, b := range map[string][]byte{d.Object.Key: forged, DigestKey(3): data} {
				name := filepath.Join(store.Root, filepath.FromSlash(key))
				os.Chmod(name, 0o600)
				if err := os.WriteFile(name, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := VerifyArchive(ctx, store, pub, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := rep.DigestError
			if rep.Break != nil {
				got = rep.Break.Error()
			}
			if rep.OK || !strings.Contains(got, tt.want) {
				t.Fatalf("VerifyArchive: ok=%v %q, want %q", rep.OK, got, tt.want)
			}
		})
	}
}

// FuzzArchiveBatch feeds arbitrary content to the archive reader as a
// batch object (its checksum signed, so the records are read): it must
// never panic, and never pass anything but the batch's true records.
func FuzzArchiveBatch(f *testing.F) {
	sink := &MemorySink{}
	for i := range 3 {
		sink.Append(context.Background(), Record{ID: fmt.Sprint(i), Code: DecisionAllow, Session: "s", Action: "tool:Bash", Resource: "ls"})
	}
	var good bytes.Buffer
	for _, r := range sink.Records() {
		c, _ := Canonical(r)
		good.Write(append(c, '\n'))
	}
	f.Add(good.Bytes())
	f.Add([]byte(`{"v":1,"prev":"","session_prev":"","seq":1,"session":"s","id":"0"}` + "\n"))
	f.Add([]byte(`{"v":1,"prev":"\u00` + "\n"))
	f.Add([]byte("\n\n"))
	key := testKey(9)
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, content []byte) {
		store := memStore{}
		object := compress(content)
		sum := sha256.Sum256(object)
		recs := sink.Records()
		d := Digest{Seq: 1, FromSeq: 1, ToSeq: 3, Head: recs[2].Hash, Sessions: map[string]string{"s": recs[2].Hash},
			Object: &ArchiveObject{Key: BatchKey(time.Time{}, 1, 3), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(object))}}
		d.Sign(key)
		digest, _ := json.Marshal(d)
		store[d.Object.Key], store[DigestKey(1)] = object, digest
		rep, err := VerifyArchive(context.Background(), store, pub, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK != bytes.Equal(content, good.Bytes()) {
			t.Fatalf("VerifyArchive of %q: %+v", content, rep)
		}
	})
}

// memStore is an ArchiveStore in memory.
type memStore map[string][]byte

func (m memStore) Create(_ context.Context, key string, data []byte) error {
	if _, ok := m[key]; ok {
		return ErrExists
	}
	m[key] = data
	return nil
}

func (m memStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	data, ok := m[key]
	if !ok {
		return nil, ErrNotArchived
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (m memStore) List(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}
