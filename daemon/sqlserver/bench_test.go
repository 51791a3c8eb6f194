package sqlserver_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon/sqlserver"
)

// TestSQLBenchmarks measures what the README reports (UPICDC_SQL_BENCH=1;
// UPICDC_SQL_BENCH_ROWS sets the raw table's size, default 1,000,000): a
// point lookup by merchant over the MySQL protocol (p50/p99), and a GROUP
// BY over the raw table, timed against DuckDB on the same rows when the SQL
// venv has duckdb. It reports; it asserts nothing about speed.
func TestSQLBenchmarks(t *testing.T) {
	if os.Getenv("UPICDC_SQL_BENCH") == "" {
		t.Skip("set UPICDC_SQL_BENCH=1 to run the SQL benchmarks")
	}
	rows := 1_000_000
	if n := os.Getenv("UPICDC_SQL_BENCH_ROWS"); n != "" {
		fmt.Sscan(n, &rows)
	}
	const merchants, perFile = 10_000, 100_000
	ctx := context.Background()
	cfg := agg.Config{WindowSizes: []string{"1d"}, Zone: time.UTC}
	db := aggtest.Open(t, t.TempDir(), cfg)
	m := cdc.NewMerger(db, cdc.ParseOptions{Location: time.UTC}, nil)
	csvDir := t.TempDir()
	start := time.Now()
	for f := 0; f*perFile < rows; f++ {
		var b strings.Builder
		b.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
		for i := f * perFile; i < min(rows, (f+1)*perFile); i++ {
			fmt.Fprintf(&b, "T%09d,u%d@bank,M%05d,%d.%02d,2024-12-%02d 10:%02d:00,completed\n", i, i%1000, i%merchants, 1+i%5000, i%100, 1+i%28, i%60)
		}
		name := fmt.Sprintf("b%03d.csv", f)
		if err := os.WriteFile(filepath.Join(csvDir, name), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := m.IngestData(ctx, name, []byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
	p := agg.NewProcessor(db, agg.Options{Stream: "bench", MaxVersionsPerTrigger: 100, Tables: cfg})
	if _, err := p.RunAvailableNow(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d raw rows, %d merchants in %s", rows, merchants, time.Since(start).Round(time.Millisecond))

	addr := startServer(t, db, nil)
	conn, err := sql.Open("mysql", "root@tcp("+addr+")/upicdc")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	stmt := "SELECT merchant_id, net_sales, completed_count FROM aggregated_upi_transactions WHERE merchant_id = ?"
	var lat []time.Duration
	for i := range 5000 {
		id := fmt.Sprintf("M%05d", (i*7919)%merchants)
		t0 := time.Now()
		var mid, net string
		var n int64
		if err := conn.QueryRow(stmt, id).Scan(&mid, &net, &n); err != nil {
			t.Fatal(err)
		}
		if i >= 500 { // warm-up
			lat = append(lat, time.Since(t0))
		}
	}
	slices.Sort(lat)
	t.Logf("point lookup by merchant over the protocol (%d queries, one connection): p50 %s, p99 %s",
		len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))

	group := "SELECT merchant_id, SUM(transaction_amount) AS total, COUNT(*) AS n FROM raw_upi_transactions_v1 GROUP BY merchant_id"
	e := sqlserver.NewEngine(db, sqlserver.Options{MaxRows: int64(rows) + 1})
	var best time.Duration
	for range 3 {
		t0 := time.Now()
		res, err := e.Query(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != merchants {
			t.Fatalf("GROUP BY: %d rows, want %d", len(res.Rows), merchants)
		}
		if d := time.Since(t0); best == 0 || d < best {
			best = d
		}
	}
	t.Logf("GROUP BY merchant_id over %d raw rows (embedded, best of 3): %s", rows, best.Round(time.Millisecond))

	py := python(t)
	script := `
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE raw_upi_transactions_v1 AS SELECT * FROM read_csv(?, types={'transaction_amount': 'DECIMAL(18,2)'})", [sys.argv[1] + "/*.csv"])
q = "SELECT merchant_id, SUM(transaction_amount) AS total, COUNT(*) AS n FROM raw_upi_transactions_v1 GROUP BY merchant_id"
best = None
for _ in range(3):
    t0 = time.perf_counter()
    n = len(con.execute(q).fetchall())
    d = time.perf_counter() - t0
    best = d if best is None or d < best else best
print(n, best)
`
	cmd := exec.Command(py, "-c", script, csvDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("DuckDB comparison not run (the SQL venv needs duckdb: pip install duckdb): %v\n%s", err, out)
		return
	}
	var n int
	var secs float64
	if _, err := fmt.Sscan(string(out), &n, &secs); err != nil || n != merchants {
		t.Fatalf("duckdb: %q %v", out, err)
	}
	duck := time.Duration(secs * float64(time.Second))
	t.Logf("same GROUP BY in DuckDB (in-memory table, best of 3): %s; upicdc/DuckDB = %.0fx", duck.Round(time.Millisecond), float64(best)/float64(duck))
}
