package delta_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/delta"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	uuidRe     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	volatileRe = regexp.MustCompile(`"(timestamp|deletionTimestamp|modificationTime|createdTime|lastUpdated|size)":\d+`)
)

// TestSeedLogGolden pins the Delta log the seed demo exports to (ids,
// timestamps and file sizes masked): what Spark and delta-rs are handed.
// Rewrite with go test ./cdc/delta -run TestSeedLogGolden -update.
func TestSeedLogGolden(t *testing.T) {
	db := seedStore(t)
	dir := t.TempDir()
	export(t, db, dir, delta.Options{})
	var b strings.Builder
	for _, info := range db.Tables() {
		table := info.Name
		if table == cdc.AuditTable {
			// Its rows are clock times and durations: its own tests pin it.
			continue
		}
		for v := 0; v <= 3; v++ {
			name := fmt.Sprintf("%020d.json", v)
			data, err := os.ReadFile(filepath.Join(dir, table, "_delta_log", name))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "== %s/_delta_log/%s\n", table, name)
			b.Write(volatileRe.ReplaceAll(uuidRe.ReplaceAll(data, []byte("<uuid>")), []byte(`"$1":<n>`)))
		}
	}
	golden := filepath.Join("testdata", "seed_log.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("Delta log differs from %s (go test -run TestSeedLogGolden -update to accept):\n%s", golden, got)
	}
}
