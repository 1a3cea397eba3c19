package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// dropPageCache writes the dirty pages out and drops the clean ones, so
// that what is read next comes from the disk. It needs root.
func dropPageCache() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// residentFraction returns the fraction of the file at path that is in
// the page cache (mincore over a mapping of it, which reads nothing), or
// -1 if it cannot tell.
func residentFraction(path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return -1
	}
	page := int64(os.Getpagesize())
	const window = 1 << 30
	var pages, resident int64
	for off := int64(0); off < fi.Size(); off += window {
		n := min(window, fi.Size()-off)
		m, err := syscall.Mmap(int(f.Fd()), off, int(n), syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			return -1
		}
		vec := make([]byte, (n+page-1)/page)
		_, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
		syscall.Munmap(m)
		if errno != 0 {
			return -1
		}
		for _, v := range vec {
			resident += int64(v & 1)
		}
		pages += int64(len(vec))
	}
	return float64(resident) / float64(pages)
}

// diskReadBytes returns how many bytes this process has had read from
// storage (not from the page cache), or -1 if it cannot tell.
func diskReadBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "read_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
