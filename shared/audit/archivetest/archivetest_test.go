package archivetest_test

import (
	"testing"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/audit/archivetest"
)

// TestDirStore runs the checks against the local directory store, the
// one `warden serve` archives into.
func TestDirStore(t *testing.T) {
	t.Parallel()
	archivetest.Run(t, func(t *testing.T) audit.ArchiveStore { return audit.DirStore{Root: t.TempDir()} })
}
