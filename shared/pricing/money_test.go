package pricing

import "testing"

func TestMoney(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		m       Money
		str     string
		decimal string
	}{
		{USD(50), "$50.00", "50.000000000"},
		{USD(0.25), "$0.25", "0.250000000"},
		{12_030_000, "$0.012030", "0.012030000"},
		{999_999_999, "$1.000000", "0.999999999"},
		{1, "$0.000000", "0.000000001"},
		{-USD(1.5), "-$1.50", "-1.500000000"},
		{0, "$0.00", "0.000000000"},
	} {
		if got := tt.m.String(); got != tt.str {
			t.Errorf("%d.String() = %q, want %q", int64(tt.m), got, tt.str)
		}
		if got := tt.m.Decimal(); got != tt.decimal {
			t.Errorf("%d.Decimal() = %q, want %q", int64(tt.m), got, tt.decimal)
		}
	}
}
