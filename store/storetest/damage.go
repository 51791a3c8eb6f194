package storetest

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Damage is a way a store file gets damaged on disk.
type Damage string

// The damages tests apply to real store files.
const (
	// Truncated cuts the file to half its pages in use (the high-water
	// mark), so pages bbolt reads are gone however far the file was grown
	// ahead of them.
	Truncated Damage = "truncated"
	// FlippedHeaders overwrites a byte of the header (id, type, element
	// count, overflow) of a quarter of the data pages, chosen with a fixed
	// seed: pages that bbolt would follow.
	FlippedHeaders Damage = "flipped-headers"
	// FlippedElements overwrites bytes of the element tables (key and
	// value offsets and sizes, child page ids) of a quarter of the data
	// pages, chosen with a fixed seed.
	FlippedElements Damage = "flipped-elements"
	// ZeroedMeta0 and ZeroedMeta1 zero one meta page, ZeroedMetas both.
	ZeroedMeta0 Damage = "zeroed-meta-0"
	ZeroedMeta1 Damage = "zeroed-meta-1"
	ZeroedMetas Damage = "zeroed-metas"
	// Emptied truncates the file to zero bytes.
	Emptied Damage = "empty"
)

// Damages lists them all.
func Damages() []Damage {
	return []Damage{Truncated, FlippedHeaders, FlippedElements, ZeroedMeta0, ZeroedMeta1, ZeroedMetas, Emptied}
}

// Geometry reads a bbolt file's page size and high-water mark (pages in
// use) from its first meta page (bbolt's layout: a 16-byte page header, then
// magic, version, page size, flags, root bucket, freelist, high-water mark).
func Geometry(t testing.TB, path string) (pageSize, pages int64) {
	t.Helper()
	var b [64]byte
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b[:], 0); err != nil {
		t.Fatal(err)
	}
	return int64(binary.NativeEndian.Uint32(b[24:])), int64(binary.NativeEndian.Uint64(b[56:]))
}

// inUse lists the branch and leaf pages of the bbolt file at path: the
// pages bbolt follows, so damage there is damage (a free page's bytes mean
// nothing).
func inUse(t testing.TB, path string, pages int64) []int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []int64
	err = db.View(func(tx *bolt.Tx) error {
		for id := int64(2); id < pages; id++ {
			info, err := tx.Page(int(id))
			if err != nil {
				return err
			}
			if info != nil && (info.Type == "branch" || info.Type == "leaf") {
				out = append(out, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Apply damages the bbolt file at path.
func Apply(t testing.TB, path string, d Damage) {
	t.Helper()
	pageSize, pages := Geometry(t, path)
	var used []int64
	if d == FlippedHeaders || d == FlippedElements {
		used = inUse(t, path, pages)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte, off int64) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	// flip XORs n random bytes among the first span bytes of a quarter of
	// the pages in use (at least 4).
	flip := func(from, span int64, n int) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range max(4, len(used)/4) {
			p := used[rng.IntN(len(used))]
			for range n {
				off := p*pageSize + from + rng.Int64N(span)
				var b [1]byte
				if _, err := f.ReadAt(b[:], off); err != nil {
					t.Fatal(err)
				}
				b[0] ^= byte(1 + rng.IntN(255))
				write(b[:], off)
			}
		}
	}
	switch d {
	case Truncated:
		err = f.Truncate(min(fi.Size(), pages*pageSize) / 2)
	case FlippedHeaders:
		flip(0, 16, 1)
	case FlippedElements:
		flip(16, 64, 4)
	case ZeroedMeta0:
		write(make([]byte, pageSize), 0)
	case ZeroedMeta1:
		write(make([]byte, pageSize), pageSize)
	case ZeroedMetas:
		write(make([]byte, 2*pageSize), 0)
	case Emptied:
		err = f.Truncate(0)
	default:
		t.Fatalf("unknown damage %q", d)
	}
	if err != nil {
		t.Fatal(err)
	}
}
