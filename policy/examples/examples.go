// Package examples holds Warden's example policy, which `warden serve` uses
// when no policy file is given.
package examples

import _ "embed"

// Policy is the example policy file, policy.yaml.
//
//go:embed policy.yaml
var Policy []byte
