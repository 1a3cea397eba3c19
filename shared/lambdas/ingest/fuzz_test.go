package ingest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/identity"
)

// FuzzParseCloudTrailCall: whatever detail an event carries, the parser
// refuses it or returns a call with an event ID, a time, a name and a
// Warden session.
func FuzzParseCloudTrailCall(f *testing.F) {
	for _, name := range []string{"s3-getobject.json", "s3-deleteobject-denied.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "ingest", name))
		if err != nil {
			f.Fatal(err)
		}
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(ev.Detail))
	}
	f.Add([]byte(`{"eventID":"x","eventTime":"2026-11-26T12:00:00Z","eventSource":"s3","eventName":"G","userIdentity":{"sessionContext":{"sourceIdentity":"0f1e2d3c4b5a69788796a5b4"}}}`))
	f.Fuzz(func(t *testing.T, detail []byte) {
		c, err := ParseCloudTrailCall(events.CloudWatchEvent{DetailType: awsconfig.CloudTrailDetailType, Detail: detail})
		if err != nil {
			return
		}
		if c.EventID == "" || c.EventTime.IsZero() || c.EventName == "" || !identity.ValidID(c.UserIdentity.SessionContext.SourceIdentity) {
			t.Errorf("taken: %+v", c)
		}
	})
}
