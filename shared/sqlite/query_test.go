package sqlite

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// queryTrail appends a trail of interleaved sessions, from many goroutines
// at once, and returns it as stored. Session "long" has 1,700 records, more
// than a page and many chunks; "mid" 300; "short" 3; 150 records have no
// session. Codes, projects and times vary, for the filters.
func queryTrail(t *testing.T, l *AuditLog) []audit.Record {
	t.Helper()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	type stream struct {
		session string
		n       int
	}
	var streams []stream
	for range 17 {
		streams = append(streams, stream{"long", 100})
	}
	for range 3 {
		streams = append(streams, stream{"mid", 100})
	}
	streams = append(streams, stream{"short", 3})
	for range 3 {
		streams = append(streams, stream{"", 50})
	}
	var wg sync.WaitGroup
	for g, s := range streams {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range s.n {
				r := record(fmt.Sprintf("%d-%d", g, i))
				r.Session, r.Time = s.session, t0.Add(time.Duration(rng.IntN(3600))*time.Second)
				r.Code = []audit.Code{audit.DecisionAllow, audit.DecisionDeny, audit.ToolOutcome}[rng.IntN(3)]
				r.Project = []string{"web", "api"}[rng.IntN(2)]
				if _, err := l.Append(t.Context(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	all, err := l.After(t.Context(), 0, 10_000)
	must(t, err)
	if len(all) != 17*100+3*100+3+3*50 {
		t.Fatalf("the trail has %d records", len(all))
	}
	return all
}

// TestQueryMatchesFilter holds Query to its definition: the records after
// seq after that match the filter, in order, at most limit of them, each
// as stored. By session alone it fetches exactly what is missing, in
// chunks on several connections; with more in the filter it reads the
// session in rounds and matches the decoded records.
func TestQueryMatchesFilter(t *testing.T) {
	t.Parallel()
	l := openTest(t).Audit()
	all := queryTrail(t, l)
	var long []int64
	for _, r := range all {
		if r.Session == "long" {
			long = append(long, r.Seq)
		}
	}
	noon := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		f     audit.Filter
		after int64
		limit int
	}{
		{"a long session whole", audit.Filter{Session: "long"}, 0, 5000},
		{"a long session, first page", audit.Filter{Session: "long"}, 0, 1000},
		{"a long session, last page", audit.Filter{Session: "long"}, long[999], 1000},
		{"a long session, from its middle", audit.Filter{Session: "long"}, long[850] - 1, 10},
		{"a long session after its end", audit.Filter{Session: "long"}, long[len(long)-1], 1000},
		{"a session of 300", audit.Filter{Session: "mid"}, 0, 1000},
		{"a session of 3", audit.Filter{Session: "short"}, 0, 1000},
		{"one record", audit.Filter{Session: "mid"}, 0, 1},
		{"no such session", audit.Filter{Session: "none"}, 0, 1000},
		{"a session and a code", audit.Filter{Session: "long", Code: audit.ToolOutcome}, 0, 1000},
		{"a session and a code, a few", audit.Filter{Session: "long", Code: audit.ToolOutcome}, 0, 7},
		{"a session and a project", audit.Filter{Session: "mid", Project: "api"}, 0, 1000},
		{"a session and an effect", audit.Filter{Session: "long", Effect: "denied"}, long[100], 200},
		{"a session and times", audit.Filter{Session: "long", Since: noon, Until: noon.Add(10 * time.Minute)}, 0, 1000},
		{"no session", audit.Filter{Project: "web"}, 0, 1200},
		{"no filter", audit.Filter{}, 500, 3000},
		{"a code, a few", audit.Filter{Code: audit.DecisionDeny}, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := l.Query(t.Context(), tc.f, tc.after, tc.limit)
			must(t, err)
			var want []audit.Record
			for i := range all {
				if all[i].Seq > tc.after && tc.f.Match(&all[i]) && len(want) < tc.limit {
					want = append(want, all[i])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("record %d:\n%+v\nwant\n%+v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestSessionQueryUsesTheIndex holds the statements of a query by session
// to the session index: the seqs come from the index alone, and each chunk
// is a range of it.
func TestSessionQueryUsesTheIndex(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	for q, want := range map[string]string{
		`SELECT seq FROM audit WHERE seq > 0 AND session = 's' AND session <> '' ORDER BY seq LIMIT 10`:                           "USING COVERING INDEX audit_by_session",
		`SELECT seq, record, hash FROM audit WHERE seq > 0 AND seq <= 9 AND session = 's' AND session <> '' ORDER BY seq LIMIT 5`: "USING INDEX audit_by_session (session=? AND rowid>? AND rowid<?)",
	} {
		rows, err := db.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q)
		must(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			must(t, rows.Scan(&id, &parent, &notused, &detail))
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), want) {
			t.Errorf("%s\nplan: %v, want %s", q, plan, want)
		}
	}
}
