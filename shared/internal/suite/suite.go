// Package suite runs the cases of a conformance suite (budgettest,
// watchdogtest, approvaltest): each case a parallel subtest on an adapter
// of its own.
package suite

import "testing"

// Case is one case of a suite over adapters of type S.
type Case[S any] struct {
	Name string
	Run  func(*testing.T, S)
}

// Run runs cases, each on a fresh adapter.
func Run[S any](t *testing.T, fresh func(*testing.T) S, cases []Case[S]) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Run(t, fresh(t))
		})
	}
}
