package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// Audit append benchmarks. Measured with
// go test -run '^$' -bench Append -benchtime=2s ./shared/sqlite
// on 2 shared cores (AMD EPYC), ext4 on a virtual disk, where one fsynced
// commit costs about 0.2ms:
//
//	BenchmarkAppend-2               128378    17870 ns/op   8.12 p99-ms   62.11 records/commit
//	BenchmarkAppendNoGroupCommit-2   11174   213891 ns/op  32.44 p99-ms    1.00 records/commit
//	BenchmarkAppendSerial-2          11365   210326 ns/op                  1.00 records/commit
//	BenchmarkAppendPaced-2            4473   500814 ns/op   0.96 p99-ms    1.02 records/commit
//
// Group commit turns about 4,700 records/s (one fsync each) into about
// 56,000/s with 128 appenders; there the cost is CPU (JSON and six B-tree
// inserts per record), not fsync. At 2,000 appends/s the p99 is one
// commit. The disk is shared: a run while other jobs were writing measured
// 1.5ms per commit, BenchmarkAppend at 80ms p99 and BenchmarkAppendPaced at
// 526ms p99 (2.4 records/commit): latency here follows the disk's fsync.

// BenchmarkAppend appends from 128 goroutines at once (64 per core), as
// the server's request handlers do: each commit's fsync is shared by the
// batch. ns/op is the inverse of throughput; p99-ms is the latency of one
// Append under that saturating load.
func BenchmarkAppend(b *testing.B) {
	benchmarkParallel(b)
}

// BenchmarkAppendNoGroupCommit is BenchmarkAppend with batches of one, for
// comparison: one fsync per record.
func BenchmarkAppendNoGroupCommit(b *testing.B) {
	benchmarkParallel(b, WithMaxBatch(1))
}

func benchmarkParallel(b *testing.B, opts ...Option) {
	l := openTest(b, opts...).Audit()
	r := record("bench")
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if _, err := l.Append(context.Background(), r); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportBatching(b, l)
	reportP99(b, latencies)
}

// BenchmarkAppendSerial appends from one goroutine: every record waits for
// its own commit, so ns/op is the cost of one fsynced transaction.
func BenchmarkAppendSerial(b *testing.B) {
	l := openTest(b).Audit()
	r := record("bench")
	for b.Loop() {
		if _, err := l.Append(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	reportBatching(b, l)
}

// BenchmarkAppendPaced starts 2,000 appends a second, each in its own
// goroutine, and reports the latency they see: the load the brief sets
// (1,000+ appends/s), rather than the most the writer can take.
func BenchmarkAppendPaced(b *testing.B) {
	const perSecond = 2000
	l := openTest(b).Audit()
	r := record("bench")
	latencies := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / perSecond)))
		wg.Go(func() {
			t := time.Now()
			if _, err := l.Append(context.Background(), r); err != nil {
				b.Error(err)
			}
			latencies[i] = time.Since(t)
		})
	}
	wg.Wait()
	reportBatching(b, l)
	reportP99(b, latencies)
}

func reportBatching(b *testing.B, l *AuditLog) {
	if n := l.batches.Load(); n > 0 {
		b.ReportMetric(float64(l.records.Load())/float64(n), "records/commit")
	}
}

func reportP99(b *testing.B, latencies []time.Duration) {
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

// benchTrail appends goroutines × each allowed Bash decisions, goroutine g
// writing to session s<g mod sessions>, and returns the log.
func benchTrail(b *testing.B, goroutines, each, sessions int) *AuditLog {
	b.Helper()
	db, err := Open(b.Context(), filepath.Join(b.TempDir(), "w.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	l := db.Audit()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := audit.Record{ID: fmt.Sprintf("g%d-%d", g, i), Time: time.Now(), Code: audit.DecisionAllow, Project: "p", Agent: "a",
					Session: fmt.Sprintf("s%d", g%sessions), Action: "tool:Bash", Resource: "git push origin feature/x", Effect: "allow", Rule: "shell",
					Ref: fmt.Sprintf("t%d-%d", g, i)}
				if _, err := l.Append(b.Context(), r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return l
}

// BenchmarkVerifyStored measures verifying a trail from the database, as
// `warden audit verify` does, over a trail of verifyRecords records of
// about 1.2 KB each (canonical encoding), the size of auditbench's
// records. Target (issue 4): at least 500,000 records/s. Measured
// 2026-11-26 with -benchtime 5x -count 3, 2 shared cores, 1,000,000
// records (a 2.0 GB file, all of it within SQLite's 2 GiB mmap limit):
// 624,000 to 654,000 records/s; 313,000 to 354,000 before verification
// hashed on both cores and EachStored read on two connections below
// database/sql. The machine is shared: while other jobs ran, runs fell to
// 530,000 (and the old code's to 126,000).
func BenchmarkVerifyStored(b *testing.B) {
	l := verifyTrail(b, verifyRecords)
	b.ResetTimer()
	total := int64(0)
	for b.Loop() {
		rep, err := audit.VerifyStored(b.Context(), l, nil, nil)
		if err != nil || !rep.OK {
			b.Fatalf("%+v %v", rep, err)
		}
		total += rep.Records
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}

const verifyRecords = 1_000_000

// verifyTrail appends n records of about 1.2 KB from 128 goroutines at
// once, in 1,000 sessions: Bash decisions as auditbench's workload makes
// them, with the command's recorded output in their args. It then closes
// the database, which checkpoints the WAL (hundreds of megabytes after
// such an ingest), and opens it again, as auditbench does before its
// reads: the trail is verified as a restarted server finds it.
func verifyTrail(b *testing.B, n int) *AuditLog {
	b.Helper()
	const goroutines, sessions = 128, 1000
	args, err := json.Marshal(map[string]any{
		"command":     "go test -run TestCheckout ./internal/billing/...",
		"description": "Run go",
		"output": "ok  \tgithub.com/acme/web/internal/api\t0.412s\nok  \tgithub.com/acme/web/internal/store\t1.087s\n" +
			strings.Repeat("--- PASS: TestCheckoutRetry (0.01s)\n", 7),
	})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "w.db")
	db, err := Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	l := db.Audit()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < n; i += goroutines {
				r := audit.Record{ID: audit.NewID(), Time: time.Now(), Code: audit.DecisionAllow,
					Project: "payments-api", Agent: "claude-code", Session: fmt.Sprintf("%024x", i%sessions),
					ClientSession: "3f0c9a52-7d1e-4b8a-a6c2-91e5d0b4f713", Kind: "tool", Action: "tool:Bash",
					Resource: "go test -run TestCheckout ./internal/billing/...", Args: args,
					Ref: fmt.Sprintf("toolu_01%022d", i), Effect: "allow", Rule: "shell",
					Reason: "The shell is allowed; the rules below carve out what is not.", PolicyVersion: "sha256:9b1c4e7f20a3"}
				if _, err := l.Append(b.Context(), r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if db, err = Open(b.Context(), path); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db.Audit()
}

// BenchmarkReplaySession measures reading a 10,000-record session out of a
// 40,000-record trail and building its timeline, as `warden audit replay`
// does. Target (issue 4): at most 1 s. Measured 2026-11-26, 2 cores: 121 ms.
func BenchmarkReplaySession(b *testing.B) {
	l := benchTrail(b, 40, 1000, 4)
	b.ResetTimer()
	for b.Loop() {
		var recs []audit.Record
		var after int64
		for {
			page, err := l.Query(b.Context(), audit.Filter{Session: "s0"}, after, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			recs = append(recs, page...)
			after = page[len(page)-1].Seq
		}
		if events := audit.Replay(recs); len(events) != 10_000 {
			b.Fatalf("%d events", len(events))
		}
	}
}
