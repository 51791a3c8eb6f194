package delta_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/store"
)

// preimagesOK walks an exported change feed (versions 0..latest, in order)
// and checks that each update_preimage equals the key's previous image in
// the feed (its last insert, update_postimage or delete) and comes right
// before its postimage. It returns how many preimages of versions >= from
// it checked.
func preimagesOK(t *testing.T, dir string, info store.TableInfo, from int64) int {
	t.Helper()
	tbl, err := delta.Open(filepath.Join(dir, info.Name))
	if err != nil {
		t.Fatal(err)
	}
	keyOf := func(r delta.Row) string { return rowText(r[:info.Schema.KeyColumns]) }
	last := map[string]string{}
	pending := ""
	n := 0
	if _, err := tbl.Changes(context.Background(), 0, -1, func(c delta.Change) error {
		k, row := keyOf(c.Row), rowText(c.Row)
		switch c.ChangeType {
		case "update_preimage":
			if prev, ok := last[k]; !ok || prev != row {
				t.Errorf("%s version %d key %s: preimage %s, previous image %s", info.Name, c.Version, k, row, prev)
			}
			if c.Version >= from {
				n++
			}
			pending = k
			return nil
		case "update_postimage":
			if pending != k {
				t.Errorf("%s version %d key %s: postimage without its preimage", info.Name, c.Version, k)
			}
		}
		pending = ""
		last[k] = row
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExportedPreimagesArePreviousImages: the store writes an update's
// preimage once (as the key's previous image, which its postimage points
// at); the Delta export's change data still has every update_preimage, equal
// to the key's previous image, also for updates exported after a store
// vacuum removed the change feed their previous images were in.
func TestExportedPreimagesArePreviousImages(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	w := newWorkload(5)
	w.run(t, db, 16, 300)
	dir := t.TempDir()
	opts := delta.Options{TargetFileRows: 50}
	export(t, db, dir, opts)
	checkExport(t, db, dir)
	for _, name := range []string{cdc.RawTable, agg.WindowsTable} {
		info, err := db.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		if n := preimagesOK(t, dir, info, 0); n < 50 {
			t.Errorf("%s: %d preimages exported", name, n)
		}
	}

	// The export has everything: a vacuum keeping the newest 3 versions,
	// then more batches, whose updates point back below the horizon.
	var consumers []store.Consumer
	for _, info := range db.Tables() {
		v, err := db.LatestVersion(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, store.Consumer{Name: "export", Table: info.Name, Version: v + 1, Kind: "export"})
	}
	res, err := agg.Vacuum(ctx, db, agg.VacuumOptions{Policy: store.Retention{Versions: 3}, Consumers: consumers})
	if err != nil {
		t.Fatal(err)
	}
	var horizon int64
	for _, r := range res {
		if r.Table == cdc.RawTable {
			horizon = r.To
			if r.BaseImages == 0 {
				t.Errorf("raw table vacuum kept no image at the horizon: %+v", r)
			}
		}
	}
	if horizon < 10 {
		t.Fatalf("raw horizon %d", horizon)
	}
	latest, err := db.LatestVersion(cdc.RawTable)
	if err != nil {
		t.Fatal(err)
	}
	w.run(t, db, 6, 300)
	export(t, db, dir, opts)
	for _, name := range []string{cdc.RawTable, agg.WindowsTable} {
		info, err := db.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		from := latest + 1
		if name != cdc.RawTable {
			if from, err = db.LatestVersion(name); err != nil {
				t.Fatal(err)
			}
			from -= 5
		}
		if n := preimagesOK(t, dir, info, from); n < 20 {
			t.Errorf("%s: %d preimages exported after the vacuum", name, n)
		}
	}
	if t.Failed() {
		return
	}
	// What the export wrote after the vacuum is what the store reads.
	for _, name := range []string{cdc.RawTable} {
		tbl, err := delta.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, want := deltaChangeLines(t, tbl, latest+1, -1), storeChangeLines(t, db, name, latest+1, -1)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s changes after the vacuum: Delta %d lines, store %d", name, len(got), len(want))
		}
	}
}
