package budget

import (
	"fmt"
	"time"
)

// Window is one period of a budget: an hour, a day or a calendar month in
// UTC. A budget's counters start over at the start of each window.
type Window struct {
	// Period is "hour", "day" or "month", as in the policy.
	Period string
	// Start and End bound the window, [Start, End), in UTC.
	Start, End time.Time
}

// WindowAt returns the window of the period that holds t.
func WindowAt(period string, t time.Time) (Window, error) {
	t = t.UTC()
	y, m, d := t.Date()
	var start, end time.Time
	switch period {
	case "hour":
		start = time.Date(y, m, d, t.Hour(), 0, 0, 0, time.UTC)
		end = start.Add(time.Hour)
	case "day":
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 0, 1)
	case "month":
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 1, 0)
	default:
		return Window{}, fmt.Errorf("unknown budget period %q (want hour, day or month)", period)
	}
	return Window{Period: period, Start: start, End: end}, nil
}

// Contains reports whether t falls in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// Phrase names the window as seen at now: "this hour", "today" or "this
// month" while it lasts, and by its date once it has ended ("on
// 2026-03-14", "in the hour from 2026-03-14 09:00 UTC", "in March 2026").
func (w Window) Phrase(now time.Time) string {
	current := w.Contains(now)
	switch w.Period {
	case "hour":
		if current {
			return "this hour"
		}
		return "in the hour from " + w.Start.Format("2006-01-02 15:04") + " UTC"
	case "day":
		if current {
			return "today"
		}
		return "on " + w.Start.Format("2006-01-02")
	case "month":
		if current {
			return "this month"
		}
		return "in " + w.Start.Format("January 2006")
	}
	return "in the window from " + w.Start.Format(time.RFC3339)
}
