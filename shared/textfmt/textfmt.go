// Package textfmt formats numbers, durations and long strings for messages
// people read: refusals, alerts and reports.
package textfmt

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Thousands writes n with commas between groups of three digits: 1,200,000.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	digits := strings.TrimPrefix(s, "-")
	var b strings.Builder
	if len(digits) < len(s) {
		b.WriteByte('-')
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Duration writes d without zero tails: 1m, 1m30s, 1h, 8h30m, and whole
// days as 2d.
func Duration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Truncate cuts s to at most n bytes, at a character's boundary, and marks
// the cut with "…"; a shorter s is returned as it is.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
