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

// TestUpgradesFormat2: a format-2 store (the release before compact
// records) opens read-only as it is, and is marked the newest format by the first
// open for writing, so that a format-2 binary refuses it instead of
// misreading its new records.
func TestUpgradesFormat2(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	format := func(db *DB) (f string) {
		_ = db.bolt.View(func(tx *bolt.Tx) error {
			f = string(tx.Bucket(bucketMeta).Get(keyFormat))
			return nil
		})
		return f
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := format(ro); f != "2" {
		t.Errorf("read-only open: format %q, want it left at 2", f)
	}
	_ = ro.Close()
	rw, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if f := format(rw); f != formatVersion {
		t.Errorf("write open: format %q, want %q", f, formatVersion)
	}
}
