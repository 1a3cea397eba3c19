package watchdog_test

import (
	"testing"

	"github.com/wardenhq/warden/shared/watchdog"
	"github.com/wardenhq/warden/shared/watchdog/watchdogtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	watchdogtest.Run(t, func(*testing.T) watchdog.Store { return watchdog.NewMemoryStore(0) })
}
