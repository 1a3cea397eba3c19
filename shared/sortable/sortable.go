// Package sortable encodes values for stores whose keys and columns
// compare as text: the SQLite file and DynamoDB's sort keys.
package sortable

import (
	"fmt"
	"time"
)

// layout is UTC with nanoseconds at a fixed width, so that text order is
// time order (for years 0 to 9999).
const layout = "2006-01-02T15:04:05.000000000Z"

// Time encodes t; it refuses a year the layout cannot hold rather than
// store a time that would not read back.
func Time(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %s: year outside [0,9999]", t)
	}
	return t.Format(layout), nil
}

// ParseTime decodes what Time encoded.
func ParseTime(s string) (time.Time, error) {
	return time.Parse(layout, s)
}
