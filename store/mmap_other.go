//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// releaseMapped is a no-op where MADV_DONTNEED is not known to be safe on
// a shared file map.
func releaseMapped(*bolt.DB, string) {}
