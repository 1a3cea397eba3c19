package budget

import (
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/shared/pricing"
)

// Amount is a quantity counted against budgets: dollars and tokens (input,
// output and cache tokens together).
type Amount struct {
	USD    pricing.Money
	Tokens int64
}

// Add returns a + b.
func (a Amount) Add(b Amount) Amount { return Amount{USD: a.USD + b.USD, Tokens: a.Tokens + b.Tokens} }

// Sub returns a - b.
func (a Amount) Sub(b Amount) Amount { return Amount{USD: a.USD - b.USD, Tokens: a.Tokens - b.Tokens} }

// String formats a as "$0.30 and 1,200 tokens", leaving out a zero unit.
func (a Amount) String() string {
	switch {
	case a.Tokens == 0:
		return a.USD.String()
	case a.USD == 0:
		return tokens(a.Tokens)
	}
	return a.USD.String() + " and " + tokens(a.Tokens)
}

func (a Amount) negative() bool { return a.USD < 0 || a.Tokens < 0 }

// tokens formats n as "1,200,000 tokens".
func tokens(n int64) string { return grouped(n) + " tokens" }

// grouped formats n with thousands separators: 1,200,000.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// shortDuration formats d without zero tails: 1m, 90s as 1m30s, 1h, 2d.
func shortDuration(d time.Duration) string {
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
