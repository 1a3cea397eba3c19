package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
)

// sampleSession is the Warden session of the samples in events/ingest.
const sampleSession = "0f1e2d3c4b5a69788796a5b4"

type trail struct {
	mu   sync.Mutex
	recs map[string]audit.Record
}

// Append keeps one record per ID: the same record again is taken, another
// under a taken ID refused, as the trails do.
func (t *trail) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.recs[r.ID]; ok {
		a, _ := json.Marshal(old)
		b, _ := json.Marshal(r)
		if string(a) != string(b) {
			return audit.Record{}, errors.New("another record under a taken ID")
		}
		return old, nil
	}
	t.recs[r.ID] = r
	return r, nil
}

func newHandler(t *testing.T) (*Handler, *trail) {
	t.Helper()
	store := identity.NewMemoryStore()
	if err := store.CreateSession(context.Background(), identity.Session{ID: sampleSession, Project: "data", Agent: "loader",
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tr := &trail{recs: map[string]audit.Record{}}
	return &Handler{Audit: tr, Sessions: identity.NewService(store, nil), Redactor: audit.NewRedactor(nil),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, tr
}

func sample(t *testing.T, name string) events.CloudWatchEvent {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "ingest", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestIngestEvents runs every sample of events/ingest through the handler:
// each is one aws.call record of its session (project and agent read from
// the identity store), with the action, the resource, the outcome, and the
// request; delivered again, it is the same record.
func TestIngestEvents(t *testing.T) {
	t.Parallel()
	h, tr := newHandler(t)
	want := map[string]string{
		"s3-getobject.json":           "s3:GetObject arn:aws:s3:::data-lake/raw/2026/11/orders.csv ok",
		"s3-deleteobject-denied.json": "s3:DeleteObject arn:aws:s3:::data-lake/raw/2026/11/orders.csv AccessDenied",
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "events", "ingest", "*.json"))
	if len(files) != len(want) {
		t.Fatalf("%d samples, want %d: %v", len(files), len(want), files)
	}
	for name, w := range want {
		ev := sample(t, name)
		for range 2 {
			if err := h.Handle(context.Background(), ev); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		var got []audit.Record
		for _, r := range tr.recs {
			if r.Action+" "+r.Resource+" "+r.Status == w {
				got = append(got, r)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d records for %q among %+v", name, len(got), w, tr.recs)
		}
		r := got[0]
		if r.Code != audit.AWSCall || r.Session != sampleSession || r.Project != "data" || r.Agent != "loader" || r.Kind != "aws" ||
			r.Time.IsZero() || !strings.Contains(string(r.Args), `"key":"raw/2026/11/orders.csv"`) || !strings.Contains(string(r.Args), `"source_ip":"203.0.113.7"`) {
			t.Errorf("%s: %+v", name, r)
		}
		if r.Status == "AccessDenied" && !strings.Contains(r.Reason, "no session policy allows the s3:DeleteObject action") {
			t.Errorf("%s: reason %q", name, r.Reason)
		}
	}
	if len(tr.recs) != 2 {
		t.Errorf("%d records, want 2", len(tr.recs))
	}
}

// TestIngestRefuses: an event that is not a CloudTrail call of a Warden
// session is an error, and writes nothing.
func TestIngestRefuses(t *testing.T) {
	t.Parallel()
	h, tr := newHandler(t)
	ev := sample(t, "s3-getobject.json")
	for name, edit := range map[string]func(*events.CloudWatchEvent){
		"another detail type": func(e *events.CloudWatchEvent) { e.DetailType = "EC2 Instance State-change Notification" },
		"no source identity": func(e *events.CloudWatchEvent) {
			e.Detail = json.RawMessage(strings.Replace(string(e.Detail), `"sourceIdentity": "`+sampleSession+`"`, `"sourceIdentity": ""`, 1))
		},
		"not a session ID": func(e *events.CloudWatchEvent) {
			e.Detail = json.RawMessage(strings.Replace(string(e.Detail), `"sourceIdentity": "`+sampleSession+`"`, `"sourceIdentity": "alice"`, 1))
		},
		"no event ID": func(e *events.CloudWatchEvent) {
			e.Detail = json.RawMessage(strings.Replace(string(e.Detail), `"eventID"`, `"x"`, 1))
		},
		"no time": func(e *events.CloudWatchEvent) {
			e.Detail = json.RawMessage(strings.Replace(string(e.Detail), `"eventTime"`, `"x"`, 1))
		},
		"not JSON": func(e *events.CloudWatchEvent) { e.Detail = json.RawMessage(`[`) },
		"too large": func(e *events.CloudWatchEvent) {
			e.Detail = json.RawMessage(`"` + strings.Repeat("x", MaxCloudTrailDetail) + `"`)
		},
		"no call name": func(e *events.CloudWatchEvent) {
			e.Detail = json.RawMessage(strings.Replace(string(e.Detail), `"eventName"`, `"x"`, 1))
		},
	} {
		e := ev
		e.Detail = append(json.RawMessage(nil), ev.Detail...)
		edit(&e)
		if err := h.Handle(context.Background(), e); err == nil {
			t.Errorf("%s: taken", name)
		}
	}
	if len(tr.recs) != 0 {
		t.Errorf("records written: %+v", tr.recs)
	}
}
