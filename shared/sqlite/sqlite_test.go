package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openTest opens a new database in a temporary directory and closes it at
// the end of the test.
func openTest(t testing.TB, opts ...Option) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "warden.db"), opts...)
}

// openAt opens the database at path and closes it at the end of the test.
func openAt(t testing.TB, path string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdWriter takes the one writer connection, so that the audit writer
// stalls when it starts its next batch. Closing the returned connection
// lets it go on.
func holdWriter(t testing.TB, db *DB) *sql.Conn {
	t.Helper()
	c, err := db.w.Conn(context.Background())
	if err != nil {
		t.Fatalf("take writer connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := t.Context()
	for _, tc := range []struct {
		pool   *sql.DB
		pragma string
		want   string
	}{
		{db.w, "journal_mode", "wal"},
		{db.w, "synchronous", "2"}, // FULL
		{db.w, "busy_timeout", "5000"},
		{db.w, "user_version", fmt.Sprint(len(migrations))},
		{db.w, "wal_autocheckpoint", "0"}, // checkpoints run in the background
		{db.w, "journal_size_limit", fmt.Sprint(64 << 20)},
		{db.r, "busy_timeout", "5000"},
		{db.r, "journal_mode", "wal"},
	} {
		var got string
		if err := tc.pool.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
	// The readers cannot write.
	_, err := db.r.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('k', NULL)")
	if want := "attempt to write a readonly database (8)"; err == nil || err.Error() != want {
		t.Errorf("insert through a reader: %v, want %q", err, want)
	}
}

func TestOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	for range 2 {
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := db.w.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), path)
	want := `open database "` + path + `": schema version 99 is newer than this build knows (` + fmt.Sprint(len(migrations)) + `)`
	if err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
}

func TestOpenPathNeedingEscapes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag", "warden 100%.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db := openAt(t, path)
	if err := db.PutMeta(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at the given path: %v", err)
	}
}

// TestWALStartsOverUnderSteadyWrites checks that the WAL stays bounded
// while commits never stop: a PASSIVE checkpoint alone never catches up
// with them, and the WAL grew to gigabytes.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	t.Parallel()
	const limit = 256 << 10
	db := openTest(t, func(c *config) { c.checkpointEvery, c.walLimit = 20*time.Millisecond, limit })
	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := record(fmt.Sprintf("g%d-%d", g, i))
				r.Session = fmt.Sprintf("s%d", g)
				if _, err := db.Audit().Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// The WAL grows by about a page per record per commit here: past the
	// limit within a fraction of a second. Restarted, it is truncated to
	// the limit, and it is past it again only for a checkpoint's interval.
	var largest int64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(db.path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	n := db.Audit().records.Load()
	if n < 2000 {
		t.Fatalf("only %d records written in 3s: too few to test the checkpoints", n)
	}
	if largest > 32*limit {
		t.Errorf("the WAL reached %d bytes under steady writes (%d records), want it started over near %d", largest, n, limit)
	}
}

// TestOpenRefusesASecondUser checks that a database open here cannot be
// opened again until it is closed.
func TestOpenRefusesASecondUser(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), path)
	want := `open database "` + path + `": another process has this database open (is a warden serve already running on it?): ` + path + `.lock is locked`
	if err == nil || err.Error() != want {
		t.Errorf("second Open: %v, want %q", err, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	openAt(t, path) // free again
}
