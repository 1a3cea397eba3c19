package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// cacheState is what the OS page cache held of the database when the reads
// began, and how it got there (--page-cache).
type cacheState struct {
	mode     string        // as-is, warm or cold
	took     time.Duration // reading the file through (warm) or dropping the cache (cold)
	resident float64       // the fraction of the database file in the page cache; -1 if unknown
}

// prepareCache puts the OS page cache in the state mode asks for: as the
// ingest (or whatever ran before) left it, warm by reading the database
// file through once, or cold by dropping it.
func prepareCache(mode, path string, progress io.Writer) (*cacheState, error) {
	c := &cacheState{mode: mode}
	start := time.Now()
	switch mode {
	case "warm":
		if err := readThrough(path); err != nil {
			return nil, fmt.Errorf("--page-cache warm: %w", err)
		}
	case "cold":
		if err := dropPageCache(); err != nil {
			return nil, fmt.Errorf("--page-cache cold: drop the OS page cache: %w", err)
		}
	}
	c.took = time.Since(start)
	c.resident = residentFraction(path)
	fmt.Fprintf(progress, "page cache %s (%s): %s of the database file cached\n", mode, c.took.Round(time.Millisecond), percent(c.resident))
	return c, nil
}

// readThrough reads the file at path once, which leaves as much of it in
// the page cache as fits.
func readThrough(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		_, err := f.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
}

func percent(f float64) string {
	if f < 0 {
		return "an unknown share"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}
