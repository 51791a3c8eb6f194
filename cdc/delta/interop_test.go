//go:build interop

package delta_test

// The interop check: real Apache Spark (pyspark 4.0 + delta-spark 4.0) and
// delta-rs (the deltalake package) read our export and must see exactly what
// the store says, at every version, including the change data feed with
// _commit_version and _commit_timestamp; on the seed demo, Spark's own
// streaming aggregation (readChangeFeed + foreachBatch, as in the original
// design) must equal our aggregated table.
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
	"strings"
	"testing"
	"time"

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

// storeView renders the store the way the scripts render what they read:
// timestamps as epoch micros, commit timestamps as epoch millis.
func storeRaw(r store.Row) []string {
	return []string{r.TransactionID, r.UPIID, r.MerchantID, r.Amount.Decimal(), itoa(r.Time), r.Status.String()}
}

func storeAgg(a store.Aggregate) []string {
	return []string{a.MerchantID, a.TotalSales.Decimal(), a.TotalRefunds.Decimal(), a.NetSales.Decimal(),
		itoa(a.Initiated), itoa(a.Completed), itoa(a.Failed), itoa(a.Refunded), itoa(a.LastRawVersion)}
}

func compareEngine(t *testing.T, db *store.DB, v engineView) {
	t.Helper()
	ctx := context.Background()
	for _, table := range store.Tables() {
		got, ok := v.Tables[string(table)]
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
		for ver := int64(0); ver <= latest; ver++ {
			var want [][]string
			if table == store.RawTable {
				if _, err := db.ScanRows(ctx, ver, func(r store.Row) error { want = append(want, storeRaw(r)); return nil }); err != nil {
					t.Fatal(err)
				}
			} else {
				rows, _, err := db.Aggregates(ver)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range rows {
					want = append(want, storeAgg(a))
				}
			}
			if g, w := joinRows(got.Versions[itoa(ver)]), joinRows(want); !slices.Equal(g, w) {
				t.Errorf("%s %s version %d:\n got %q\nwant %q", v.Engine, table, ver, g, w)
			}
		}
		var want [][]string
		meta := func(ct store.ChangeType, ver, ts int64) []string { return []string{ct.String(), itoa(ver), itoa(ts)} }
		if table == store.RawTable {
			err = db.Changes(ctx, 0, -1, func(c store.Change) error {
				want = append(want, append(storeRaw(c.Row), meta(c.Type, c.Version, c.Timestamp)...))
				return nil
			})
		} else {
			err = db.AggChanges(ctx, 0, -1, func(c store.AggChange) error {
				want = append(want, append(storeAgg(c.Agg), meta(c.Type, c.Version, c.Timestamp)...))
				return nil
			})
		}
		if err != nil {
			t.Fatal(err)
		}
		if g, w := joinRows(got.Changes), joinRows(want); !slices.Equal(g, w) {
			t.Errorf("%s %s change feed from 0 (%d rows, store %d):\n got %q\nwant %q", v.Engine, table, len(g), len(w), g, w)
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
		aggs, _, err := db.Aggregates(-1)
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
	})
}
