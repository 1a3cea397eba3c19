//go:build !linux

package main

import "errors"

// freeBytes is not implemented here: the --min-free guard is off, and
// --max-disk alone bounds the database.
func freeBytes(string) (int64, error) {
	return 0, errors.New("free space is only read on Linux")
}
