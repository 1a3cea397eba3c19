package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DirStore is an ArchiveStore in a local directory, for `warden serve` and
// for exports. An object is written to a temporary file, fsynced, made
// read-only and linked into place: link never replaces a file, so an
// object, once there, stays as it was written.
type DirStore struct {
	Root string
}

var _ ArchiveStore = DirStore{}

// path checks that key is a relative slash-separated path of plain names
// and returns where it lives.
func (d DirStore) path(key string) (string, error) {
	if key == "" || len(key) > 512 || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("%q: %w: not a relative path", key, ErrBadKey)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00") || strings.HasPrefix(part, ".") {
			return "", fmt.Errorf("%q: %w: not a plain path", key, ErrBadKey)
		}
	}
	return filepath.Join(d.Root, filepath.FromSlash(key)), nil
}

// Create implements ArchiveStore.
func (d DirStore) Create(_ context.Context, key string, data []byte) error {
	name, err := d.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the link, the object lives on under its name
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o400)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	if err := os.Link(tmp.Name(), name); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", key, ErrExists)
	} else if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return syncDir(dir)
}

// Open implements ArchiveStore.
func (d DirStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	name, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotArchived)
	}
	return f, err
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// List implements ArchiveStore.
func (d DirStore) List(_ context.Context, prefix string) ([]string, error) {
	dir, err := d.path(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return nil, err
	}
	var keys []string
	err = filepath.WalkDir(dir, func(name string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && name == dir {
			return fs.SkipAll
		}
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return err
		}
		rel, err := filepath.Rel(d.Root, name)
		keys = append(keys, filepath.ToSlash(rel))
		return err
	})
	return keys, err // WalkDir walks in lexical order
}
