//go:build !linux

package boltdb

// trimSupported is false off Linux: the resident set is not measured there
// and the trimmer does not run.
const trimSupported = false

// fileResident is unknown off Linux.
func fileResident() int64 { return 0 }

func dropMapping(addr, size uintptr) {}
