package pricing

import (
	"fmt"
	"math"
)

// Money is an amount in billionths of a US dollar (nano-dollars). Integer
// arithmetic keeps sums exact: a price of $3 per million tokens is 3,000
// nano-dollars per token. It holds up to about $9.2 billion.
type Money int64

// Dollar is one US dollar.
const Dollar Money = 1_000_000_000

// USD converts a dollar amount written in a policy (such as 50 or 0.25)
// to Money, rounded to the nearest nano-dollar.
func USD(d float64) Money { return Money(math.Round(d * float64(Dollar))) }

// Dollars is m in dollars, for display.
func (m Money) Dollars() float64 { return float64(m) / float64(Dollar) }

// String formats m as dollars with six decimals, "$0.012030", or two when
// it is a whole number of cents, "$50.00".
func (m Money) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	if m%10_000_000 == 0 {
		return fmt.Sprintf("%s$%d.%02d", sign, m/Dollar, m%Dollar/10_000_000)
	}
	micro := (m + 500) / 1000 // rounded to the nearest micro-dollar
	return fmt.Sprintf("%s$%d.%06d", sign, micro/1_000_000, micro%1_000_000)
}

// Decimal formats m as a plain decimal number of dollars with nine
// decimals, "0.012030000", as the audit records it: exact, no rounding.
func (m Money) Decimal() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%09d", sign, m/Dollar, m%Dollar)
}
