package lambdas

import (
	"encoding/json"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/wardenhq/warden/shared/awsconfig"
)

// Metrics writes CloudWatch metrics as Lambda functions do it: a line of
// the embedded metric format on the function's output, which CloudWatch
// Logs turns into a metric (namespace Warden, dimension Stage) without an
// API call on the request's path. The stack's alarms watch them
// (awsconfig's metric names).
type Metrics struct {
	Stage string
	Out   io.Writer
	Now   func() time.Time

	mu sync.Mutex // one line at a time
}

// Count adds n to the metric name; props are written on the log line
// beside it, for whoever reads the log.
func (m *Metrics) Count(name string, n int, props map[string]any) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	line := map[string]any{}
	maps.Copy(line, props)
	line["_aws"] = map[string]any{
		"Timestamp": now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  awsconfig.MetricsNamespace,
			"Dimensions": [][]string{{awsconfig.MetricsDimension}},
			"Metrics":    []any{map[string]string{"Name": name, "Unit": "Count"}},
		}},
	}
	line[awsconfig.MetricsDimension] = m.Stage
	line[name] = n
	data, err := json.Marshal(line)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.Out.Write(append(data, '\n'))
}
