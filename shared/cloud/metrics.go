package cloud

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/wardenhq/warden/shared/budget"
)

// Metrics writes CloudWatch metrics as Lambda functions do it: a line of
// the embedded metric format on the function's output, which CloudWatch
// Logs turns into a metric (namespace Warden, dimension Stage) without an
// API call on the request's path. The stack's alarm on BudgetAlerts
// watches what BudgetAlert writes.
type Metrics struct {
	Stage string
	Out   io.Writer
	Now   func() time.Time

	mu sync.Mutex // one line at a time
}

// BudgetAlert records one budget alert: the metric BudgetAlerts, with the
// budget, scope and threshold as properties of the log line.
func (m *Metrics) BudgetAlert(_ context.Context, a budget.Alert) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	line := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "Warden",
				"Dimensions": [][]string{{"Stage"}},
				"Metrics":    []any{map[string]string{"Name": "BudgetAlerts", "Unit": "Count"}},
			}},
		},
		"Stage":        m.Stage,
		"BudgetAlerts": 1,
		"budget":       a.Budget,
		"scope":        a.Scope + " " + a.Key,
		"threshold":    a.Threshold,
	}
	data, err := json.Marshal(line)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.Out.Write(append(data, '\n'))
}
