//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// releaseMapped is advice only Linux is given (see resident_linux.go).
func releaseMapped(*bolt.Tx) {}
