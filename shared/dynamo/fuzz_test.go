package dynamo_test

import (
	"encoding/json"
	"testing"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/dynamo"
)

// FuzzAppendedRecord feeds the stream's item images to the decoder the
// archiver uses: it never panics, takes only record items, and what it
// takes is a record stored under its own ID.
func FuzzAppendedRecord(f *testing.F) {
	good, _ := json.Marshal(audit.Record{ID: "6f1c2a9e0b7d4c3e8a5f1b2c3d4e5f60", Code: audit.DecisionAllow, Session: "s1", Args: json.RawMessage(`{"a":1}`)})
	f.Add("rec#6f1c2a9e0b7d4c3e8a5f1b2c3d4e5f60", string(good))
	f.Add("head", `{"seq":1}`)
	f.Add("rec#x", `{"id":"y"}`)
	f.Add("rec#", `null`)
	f.Fuzz(func(t *testing.T, pk, data string) {
		r, ok, err := dynamo.AppendedRecord(pk, data)
		if ok && (err != nil || "rec#"+r.ID != pk || r.ID == "") {
			t.Fatalf("took %q as record %q (err %v)", pk, r.ID, err)
		}
		if !ok && r.ID != "" {
			t.Fatalf("refused %q but returned record %q", pk, r.ID)
		}
	})
}
