package store

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestRefusesAnotherFormat: a file written by an incompatible store format
// is refused on open, read-write or read-only, instead of being misread.
func TestRefusesAnotherFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if _, err := Open(dir, Options{ReadOnly: ro}); !errors.Is(err, ErrFormat) {
			t.Errorf("open (read-only %v): %v, want ErrFormat", ro, err)
		}
	}
}
