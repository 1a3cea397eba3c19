//go:build !unix

package sqlite

import "os"

// lockFile creates the file at path. Where flock does not exist, nothing
// stops a second process from opening the database.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
