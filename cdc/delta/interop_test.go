//go:build interop

package delta_test

// The interop check: real Apache Spark (pyspark 4.0 + delta-spark 4.0) and
// delta-rs (the deltalake package) read our export and must see exactly what
// the store says, for every table of the store (merchant_window_aggregates
// too, window_start and window_end as instants), at every version,
// including the change data feed with _commit_version and
// _commit_timestamp; on the seed demo, Spark's own streaming aggregation
// (readChangeFeed + foreachBatch, as in the original design) must equal our
// aggregated table.
//
//	go test -tags interop -run TestInterop -v -timeout 30m ./cdc/delta
//
// Needs python3 (with venv) and Java 17+ on PATH, and PyPI + Maven Central.
// The venv is cached in $UPICDC_INTEROP_VENV, default
// <user cache dir>/upicdc-interop/venv; Spark caches the delta-spark jars in
// ~/.ivy2. The first run downloads about 450 MB.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/store"
)

// interopPackages are pinned so the check means the same thing every run:
// delta-spark 4.0 is the Delta release for Spark 4.0.
var interopPackages = []string{"pyspark==4.0.*", "delta-spark==4.0.*", "deltalake==1.*", "pyarrow", "pandas"}

// venvPython returns the cached venv's python, creating the venv if needed.
func venvPython(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("UPICDC_INTEROP_VENV")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "upicdc-interop", "venv")
	}
	py := filepath.Join(dir, "bin", "python")
	if exec.Command(py, "-c", "import pyspark, delta, deltalake, pyarrow").Run() == nil {
		return py
	}
	start := time.Now()
	for _, args := range [][]string{
		{"python3", "-m", "venv", dir},
		append([]string{py, "-m", "pip", "install", "-q"}, interopPackages...),
	} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("installed %s into %s in %s", strings.Join(interopPackages, " "), dir, time.Since(start).Round(time.Second))
	return py
}

// engineView is what read_export.py / read_export_deltars.py write.
type engineView struct {
	Engine string `json:"engine"`
	Tables map[string]struct {
		Latest   int64                 `json:"latest"`
		Oldest   int64                 `json:"oldest"` // delta-rs: the oldest version the log lists
		Versions map[string][][]string `json:"versions"`
		Changes  [][]string            `json:"changes"`
	} `json:"tables"`
	StreamAggregates [][]string `json:"stream_aggregates"`
}

func runEngine(t *testing.T, py, script, exportDir string, args ...string) engineView {
	t.Helper()
	out := filepath.Join(t.TempDir(), "view.json")
	cmd := exec.Command(py, append([]string{filepath.Join("..", "..", "examples", "spark", script), exportDir, "--json", out}, args...)...)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	var v engineView
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s read the export in %s", v.Engine, time.Since(start).Round(time.Second))
	return v
}

func joinRows(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, "|")
	}
	slices.Sort(out)
	return out
}

// storeCell renders a store value the way the scripts render what they
// read: timestamps as epoch micros (equal instants, whatever zone a column
// is shown in), decimals with two places.
func storeCell(c store.Column, v store.Value) string {
	switch {
	case v.Null:
		return ""
	case c.Type == store.String || c.Type == store.Enum:
		return v.Str
	case c.Type == store.Money:
		return v.Paise().Decimal()
	case c.Type == store.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return itoa(v.Int) // Int, and Timestamp as epoch micros
}

func storeCells(s store.Schema, r store.Row) []string {
	out := make([]string, len(r))
	for i, v := range r {
		out[i] = storeCell(s.Columns[i], v)
	}
	return out
}

// compareEngine checks every table of the store (raw, totals, windows)
// at every version and its whole change feed against what an engine read.
func compareEngine(t *testing.T, db *store.DB, v engineView) {
	t.Helper()
	compareEngineFrom(t, db, v, nil)
}

// compareEngineFrom is compareEngine from the oldest version of each table
// (absent: 0): every version from it on and the change feed from it.
func compareEngineFrom(t *testing.T, db *store.DB, v engineView, oldest map[string]int64) {
	t.Helper()
	ctx := context.Background()
	for _, info := range db.Tables() {
		table := info.Name
		got, ok := v.Tables[table]
		if !ok {
			t.Fatalf("%s: no %s in its output", v.Engine, table)
		}
		latest, err := db.LatestVersion(table)
		if err != nil {
			t.Fatal(err)
		}
		if got.Latest != latest {
			t.Errorf("%s %s: latest version %d, store %d", v.Engine, table, got.Latest, latest)
		}
		from := oldest[info.Name]
		if got.Oldest != from {
			t.Errorf("%s %s: oldest version %d, want %d", v.Engine, table, got.Oldest, from)
		}
		rows := 0
		for ver := from; ver <= latest; ver++ {
			var want [][]string
			if _, err := db.Scan(ctx, table, ver, store.KeyRange{}, func(r store.Row) error {
				want = append(want, storeCells(info.Schema, r))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			rows = max(rows, len(want))
			if g, w := joinRows(got.Versions[itoa(ver)]), joinRows(want); !slices.Equal(g, w) {
				t.Errorf("%s %s version %d:\n got %q\nwant %q", v.Engine, table, ver, g, w)
			}
		}
		if rows == 0 && table != agg.AlertsTable { // no alert rules here: merchant_alerts stays empty
			t.Errorf("%s: empty at every version; the comparison proves nothing", table)
		}
		var want [][]string
		err = db.Changes(ctx, table, from, -1, func(c store.Change) error {
			want = append(want, append(storeCells(info.Schema, c.Row), c.Type.String(), itoa(c.Version), itoa(c.Timestamp)))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := joinRows(got.Changes), joinRows(want); !slices.Equal(g, w) {
			t.Errorf("%s %s change feed from %d (%d rows, store %d):\n got %q\nwant %q", v.Engine, table, from, len(g), len(w), g, w)
		}
	}
}

func TestInterop(t *testing.T) {
	for _, bin := range []string{"python3", "java"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the interop check needs %s on PATH", bin)
		}
	}
	py := venvPython(t)

	t.Run("seed demo", func(t *testing.T) {
		db := seedStore(t)
		dir := t.TempDir()
		export(t, db, dir, delta.Options{})
		spark := runEngine(t, py, "read_export.py", dir, "--stream")
		compareEngine(t, db, spark)
		compareEngine(t, db, runEngine(t, py, "read_export_deltars.py", dir))
		// Spark's own streaming job over our change feed computes the seed's table.
		aggs, _, err := agg.Totals(context.Background(), db, -1)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]string
		for _, a := range aggs {
			want = append(want, []string{a.MerchantID, a.TotalSales.Decimal(), a.TotalRefunds.Decimal(), a.NetSales.Decimal()})
		}
		if g, w := joinRows(spark.StreamAggregates), joinRows(want); !slices.Equal(g, w) {
			t.Errorf("Spark streaming aggregation:\n got %q\nwant %q", g, w)
		}
	})

	t.Run("random workload", func(t *testing.T) {
		db := openStore(t)
		newWorkload(42).run(t, db, 24, 60)
		dir := t.TempDir()
		// Small files and two export runs: copy-on-write rewrites, compaction
		// of small files, checkpoints at 10 and 20, an incremental export.
		export(t, db, dir, delta.Options{TargetFileRows: 50})
		newWorkload(43).run(t, db, 2, 60)
		export(t, db, dir, delta.Options{TargetFileRows: 50})
		compareEngine(t, db, runEngine(t, py, "read_export.py", dir))
		compareEngine(t, db, runEngine(t, py, "read_export_deltars.py", dir))

		// After a vacuum keeping the newer half of the history, delta-rs reads
		// every retained version and the change feed from the oldest one.
		var names []string
		for _, info := range db.Tables() {
			names = append(names, info.Name)
		}
		latest, err := db.LatestVersion(names[0])
		if err != nil {
			t.Fatal(err)
		}
		mid, err := db.Commit(names[0], latest/2)
		if err != nil {
			t.Fatal(err)
		}
		res, err := delta.VacuumAll(context.Background(), dir, names, delta.VacuumOptions{
			Now: func() time.Time { return time.UnixMilli(mid.Timestamp) }})
		if err != nil {
			t.Fatal(err)
		}
		oldest := map[string]int64{}
		removed := 0
		for _, r := range res {
			oldest[r.Table] = r.Oldest
			removed += r.FilesRemoved
		}
		if oldest[names[0]] != latest/2 || removed == 0 {
			t.Fatalf("vacuum kept raw from %d (want %d), removed %d files", oldest[names[0]], latest/2, removed)
		}
		compareEngineFrom(t, db, runEngine(t, py, "read_export_deltars.py", dir), oldest)
	})
}
