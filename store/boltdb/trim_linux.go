//go:build linux

package boltdb

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// trimSupported says whether fileResident can measure anything here.
const trimSupported = true

// fileResident returns the process's resident file-backed and shared memory
// in bytes (the third field of /proc/self/statm), or 0 if unknown.
func fileResident() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// dropMapping removes the page-table entries of [addr, addr+size) of the
// database mapping. An error only means nothing was trimmed.
func dropMapping(addr, size uintptr) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED)
}
