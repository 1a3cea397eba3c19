package notifier

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/shared/notify"
)

// FuzzInvoke: whatever the function is invoked with, the handler tells an
// outcome step from a stream batch, and refuses, skips or delivers without
// panicking; an outcome step it takes names a valid approval.
func FuzzInvoke(f *testing.F) {
	for _, name := range []string{"approval-outcome.json", "stream-batch.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "notifier", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"step":"outcome","approval":"APR-AAAAAAAAAAAAAAAA","Records":null}`))
	f.Add([]byte(`{"Records":[{"eventName":"INSERT","dynamodb":{"NewImage":{"envelope":{"S":"{}"}}}}]}`))
	h := &Handler{Deliver: func(context.Context, notify.Envelope) error { return nil }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := h.Invoke(context.Background(), data)
		var o Outcome
		if err == nil && json.Unmarshal(data, &o) == nil && o.Step != "" && o.Step != StepOutcome {
			t.Errorf("step %q taken", o.Step)
		}
	})
}
