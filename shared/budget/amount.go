package budget

import (
	"github.com/wardenhq/warden/shared/pricing"
	"github.com/wardenhq/warden/shared/textfmt"
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
func tokens(n int64) string { return textfmt.Thousands(n) + " tokens" }
