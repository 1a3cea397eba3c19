package hookbench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// MeasureFsync appends 4 KiB to a file in dir and fsyncs it, n times or
// for at most limit, and returns the fsync times: the floor under each
// durable commit of warden's.
func MeasureFsync(dir string, n int, limit time.Duration) (*Histogram, error) {
	path := filepath.Join(dir, "fsync-probe")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("measure fsync: %w", err)
	}
	block := make([]byte, 4096)
	h := &Histogram{}
	end := time.Now().Add(limit)
	for i := 0; i < n && time.Now().Before(end); i++ {
		if _, err := f.Write(block); err != nil {
			f.Close()
			return nil, fmt.Errorf("measure fsync: %w", err)
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("measure fsync: %w", err)
		}
		h.Record(time.Since(t))
	}
	return h, errors.Join(f.Close(), os.Remove(path))
}
