package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// sampleStore builds a store of a few hundred rows over several versions,
// with aggregates, closes it and returns its bytes.
func sampleStore(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	states := []string{"new", "done", "void"}
	for v := range 4 {
		var rows []store.Row
		for i := range 300 {
			rows = append(rows, row(fmt.Sprintf("T%05d", i*3+v%3), fmt.Sprintf("M%02d", i%17), store.Paise(100+i+v), v, states[v%3]))
		}
		merge(t, db, fmt.Sprintf("batch%d", v), rows...)
	}
	_, _, err = db.Process(context.Background(), "s", "items", func(tx *store.ProcessTx) error {
		w, err := tx.Table("by_owner")
		if err != nil {
			return err
		}
		for i := range 17 {
			if err := w.Insert(store.Row{store.S(fmt.Sprintf("M%02d", i)), day(1), store.M(store.Paise(i)), store.Null()}); err != nil {
				return err
			}
		}
		tx.Commit(4, nil, nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// storeDir writes data as the store file of a new data dir.
func storeDir(t *testing.T, data []byte) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, store.FileName)
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestOpenRefusesADamagedStore(t *testing.T) {
	good := sampleStore(t)
	for _, d := range storetest.Damages() {
		for _, readOnly := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/readOnly=%v", d, readOnly), func(t *testing.T) {
				dir, path := storeDir(t, good)
				storetest.Apply(t, path, d)
				before, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				db, err := store.Open(dir, store.Options{ReadOnly: readOnly})
				if err == nil {
					db.Close()
					t.Fatal("Open accepted the damaged store")
				}
				var damaged *store.DamagedError
				if !errors.As(err, &damaged) || !errors.Is(err, store.ErrDamaged) {
					t.Fatalf("Open: %v (%T), want a *DamagedError", err, err)
				}
				if damaged.Path != path || damaged.Empty != (d == storetest.Emptied) {
					t.Errorf("DamagedError %+v", damaged)
				}
				msg := err.Error()
				want := path + " is damaged ("
				if d == storetest.Emptied {
					want = path + " is empty: not a upicdc store (restore it from a backup)"
				}
				if !bytes.Contains([]byte(msg), []byte(want)) || bytes.ContainsAny([]byte(msg), "\n") {
					t.Errorf("message %q, want %q on one line", msg, want)
				}
				after, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(before, after) {
					t.Error("Open wrote into the damaged file")
				}
			})
		}
	}
}

func TestOpenAcceptsTheSampleStore(t *testing.T) {
	dir, _ := storeDir(t, sampleStore(t))
	for _, readOnly := range []bool{true, false} {
		db, err := store.Open(dir, store.Options{ReadOnly: readOnly})
		if err != nil {
			t.Fatal(err)
		}
		if problems, err := db.Consistency(context.Background()); err != nil || len(problems) > 0 {
			t.Errorf("readOnly=%v: %v %v", readOnly, problems, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Damage that happens while the store is open (a disk failing, someone
// truncating the file) makes bbolt panic on a page or fault on memory past
// the end of the file; transactions return a *DamagedError instead.
func TestDamageAfterOpenIsAnError(t *testing.T) {
	good := sampleStore(t)
	pageSize, pages := int64(0), int64(0)
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, f *os.File)
	}{
		{"page headers zeroed", func(t *testing.T, f *os.File) {
			zero := make([]byte, 16)
			for p := int64(2); p < pages; p++ {
				if _, err := f.WriteAt(zero, p*pageSize); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"file cut to its meta pages", func(t *testing.T, f *os.File) {
			if err := f.Truncate(2 * pageSize); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, path := storeDir(t, good)
			pageSize, pages = storetest.Geometry(t, path)
			db, err := store.Open(dir, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			c.damage(t, f)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = db.Scan(context.Background(), "by_owner", -1, store.KeyRange{}, func(store.Row) error { return nil })
			if !errors.Is(err, store.ErrDamaged) {
				t.Fatalf("Scan on a file damaged after Open: %v, want ErrDamaged", err)
			}
			if _, err := db.KeyHistory("items", store.Row{store.S("T00003")}); !errors.Is(err, store.ErrDamaged) {
				t.Fatalf("KeyHistory on a file damaged after Open: %v, want ErrDamaged", err)
			}
		})
	}
}

// Bytes flipped anywhere in the data pages: Open refuses the file or the
// store reads it without crashing (a flipped byte inside a value is not
// structural damage and no check short of checksums sees it), and the file
// is never written.
func TestRandomFlipsNeverCrash(t *testing.T) {
	good := sampleStore(t)
	for seed := range uint64(40) {
		dir, path := storeDir(t, good)
		pageSize, pages := storetest.Geometry(t, path)
		data := bytes.Clone(good)
		rng := rand.New(rand.NewPCG(seed, 7))
		for range 16 {
			off := 2*pageSize + rng.Int64N((pages-2)*pageSize)
			data[off] ^= byte(1 + rng.IntN(255))
		}
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		for _, readOnly := range []bool{true, false} {
			db, err := store.Open(dir, store.Options{ReadOnly: readOnly})
			if err != nil {
				// Structural damage is ErrDamaged; a flipped byte inside a
				// value Open reads (a table's schema) is ErrCorrupt. Both
				// refuse the file; neither may be anything else.
				if !errors.Is(err, store.ErrDamaged) && !errors.Is(err, store.ErrCorrupt) {
					t.Errorf("seed %d: Open: %v, want ErrDamaged or ErrCorrupt", seed, err)
				}
				continue
			}
			// The file passed Open's inspection: its structure is sound, so
			// no read may panic (a recovered panic is reported as a bug).
			var errs []error
			for _, tb := range db.Tables() {
				_, err := db.History(tb.Name)
				errs = append(errs, err)
				_, err = db.Scan(context.Background(), tb.Name, -1, store.KeyRange{}, func(store.Row) error { return nil })
				errs = append(errs, err)
				errs = append(errs, db.Changes(context.Background(), tb.Name, 0, -1, func(store.Change) error { return nil }))
			}
			_, err = db.KeyHistory("items", store.Row{store.S("T00003")})
			errs = append(errs, err)
			_, err = db.Files()
			errs = append(errs, err)
			for _, err := range errs {
				if err != nil && strings.Contains(err.Error(), "panicked") {
					t.Errorf("seed %d: %v", seed, err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if readOnly {
				after, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, after) {
					t.Fatalf("seed %d: a read-only open wrote into the file", seed)
				}
			}
		}
	}
}

func TestDamagedErrorMessage(t *testing.T) {
	e := &store.DamagedError{Path: "/d/upicdc.db", Problems: []string{"meta page 0: zeroed", "x"}, More: 3}
	want := "/d/upicdc.db is damaged (meta page 0: zeroed, and 4 more problem(s)): restore it from a backup; `upicdc check` tells more"
	if e.Error() != want {
		t.Errorf("%q\nwant %q", e.Error(), want)
	}
	if e := (&store.DamagedError{Path: "/d/upicdc.db", Empty: true}); e.Error() != "/d/upicdc.db is empty: not a upicdc store (restore it from a backup)" {
		t.Errorf("%q", e.Error())
	}
}
