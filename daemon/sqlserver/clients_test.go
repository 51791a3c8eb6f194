package sqlserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon/sqlserver"
	"github.com/upicdc/upicdc/store"
)

// startServer serves db on a free loopback port until the test ends.
func startServer(t *testing.T, db *store.DB, users []config.SQLUser) string {
	t.Helper()
	srv, err := sqlserver.NewServer(db, sqlserver.ServerOptions{Listen: "127.0.0.1:0", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		<-done
	})
	return srv.Addr().String()
}

// mariadb runs the mariadb CLI in batch mode (tab-separated, a header
// line) against addr; extra are options such as --user.
func mariadb(t *testing.T, addr, query string, extra ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--no-defaults", "--protocol=tcp", "-h", host, "-P", port, "--batch", "--skip-ssl"}, extra...)
	cmd := exec.Command("mariadb", append(args, "upicdc", "-e", query)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), err
	}
	return out.String(), nil
}

// python is the venv .ci/run makes with pymysql and pandas
// (UPICDC_SQL_PYTHON overrides).
func python(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("UPICDC_SQL_PYTHON"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "upicdc-sql-venv", "bin", "python")
}

// The queries every client runs, and what they answer on the seed store.
var clientQueries = []struct{ name, query, want string }{
	{"seed totals", "SELECT merchant_id, total_sales, total_refunds, net_sales FROM aggregated_upi_transactions ORDER BY merchant_id",
		"merchant_id total_sales total_refunds net_sales\nM001 500.00 -500.00 0.00\nM002 0.00 0.00 0.00\nM003 1500.00 0.00 1500.00\nM004 0.00 0.00 0.00\n"},
	{"AS OF a version", "SELECT merchant_id, total_sales FROM aggregated_upi_transactions AS OF 2 ORDER BY merchant_id",
		"merchant_id total_sales\nM001 500.00\nM002 0.00\nM003 0.00\nM004 0.00\n"},
	{"change feed", "SELECT transaction_id, transaction_status, _change_type, _commit_version FROM raw_upi_transactions_v1_changes WHERE _commit_version = 3 ORDER BY transaction_id, _change_type DESC",
		"transaction_id transaction_status _change_type _commit_version\nT001 completed update_preimage 3\nT001 refunded update_postimage 3\nT003 initiated update_preimage 3\nT003 completed update_postimage 3\n"},
	{"grafana time series", "SELECT window_start AS time, net_sales FROM merchant_window_aggregates WHERE merchant_id='M001' AND window_size='1d' AND window_start BETWEEN '2024-12-01 00:00:00' AND '2024-12-31 00:00:00' ORDER BY 1",
		"time net_sales\n2024-12-21 00:00:00 0.00\n"},
	{"history", "SELECT version, operation FROM raw_upi_transactions_v1_history ORDER BY version",
		"version operation\n0 CREATE TABLE\n1 MERGE\n2 MERGE\n3 MERGE\n"},
}

// TestClients speaks to the server with real clients: the mariadb CLI and
// Python's pymysql with pandas.read_sql (.ci/run installs both).
func TestClients(t *testing.T) {
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Skip("mariadb client not installed (.ci/run installs it: apt-get install mariadb-client)")
	}
	if _, err := os.Stat(python(t)); err != nil {
		t.Skip("no Python venv with pymysql and pandas (.ci/run makes it)")
	}
	db := seedStore(t)
	addr := startServer(t, db, nil)
	host, port, _ := net.SplitHostPort(addr)

	t.Run("mariadb", func(t *testing.T) {
		for _, q := range clientQueries {
			out, err := mariadb(t, addr, q.query)
			if err != nil {
				t.Fatalf("%s: %v\n%s", q.name, err, out)
			}
			if got := strings.ReplaceAll(out, "\t", " "); got != q.want {
				t.Errorf("%s:\n got %q\nwant %q", q.name, got, q.want)
			}
		}
		out, err := mariadb(t, addr, "DELETE FROM aggregated_upi_transactions")
		if err == nil || !strings.Contains(out, "ERROR 1290") || !strings.Contains(out, "read-only") {
			t.Errorf("a write: err %v, %q; want ERROR 1290 read-only", err, out)
		}
		out, err = mariadb(t, addr, "INSERT INTO merchant_window_aggregates (merchant_id) VALUES ('M9')")
		if err == nil || !strings.Contains(out, "ERROR 1290") {
			t.Errorf("an insert: err %v, %q; want ERROR 1290", err, out)
		}
	})

	t.Run("pymysql+pandas", func(t *testing.T) {
		script := `
import sys, pymysql, pandas, warnings
warnings.simplefilter("ignore")
host, port = sys.argv[1], int(sys.argv[2])
conn = pymysql.connect(host=host, port=port, user="grafana", database="upicdc")
for q in sys.stdin.read().split("\n;;\n"):
    if not q.strip():
        continue
    df = pandas.read_sql(q, conn, coerce_float=False)  # DECIMAL stays Decimal
    print(" ".join(df.columns))
    for row in df.itertuples(index=False):
        print(" ".join(str(v) for v in row))
    print(";;")
`
		var in strings.Builder
		for _, q := range clientQueries {
			in.WriteString(q.query + "\n;;\n")
		}
		cmd := exec.Command(python(t), "-c", script, host, port)
		cmd.Stdin = strings.NewReader(in.String())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		got := strings.Split(string(out), ";;\n")
		for i, q := range clientQueries {
			if i >= len(got) || got[i] != q.want {
				t.Errorf("%s via pandas:\n got %q\nwant %q", q.name, strings.Join(got[i:min(i+1, len(got))], ""), q.want)
			}
		}
	})

	t.Run("passwords", func(t *testing.T) {
		sum := sha256.Sum256([]byte("s3cret"))
		addr := startServer(t, db, []config.SQLUser{{Name: "grafana", Hash: "sha256:" + hex.EncodeToString(sum[:])}})
		host, port, _ := net.SplitHostPort(addr)
		out, err := mariadb(t, addr, "SELECT COUNT(*) AS n FROM aggregated_upi_transactions", "--user=grafana", "--password=s3cret")
		if err != nil || out != "n\n4\n" {
			t.Errorf("right password: %v %q", err, out)
		}
		out, err = mariadb(t, addr, "SELECT 1", "--user=grafana", "--password=wrong")
		if err == nil || !strings.Contains(out, "Access denied") {
			t.Errorf("wrong password: err %v, %q; want access denied", err, out)
		}
		out, err = mariadb(t, addr, "SELECT 1", "--user=nobody", "--password=s3cret")
		if err == nil || !strings.Contains(out, "Access denied") {
			t.Errorf("unknown user: err %v, %q; want access denied", err, out)
		}
		script := `
import sys, pymysql
try:
    pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user="grafana", password=sys.argv[3], database="upicdc").cursor().execute("SELECT 1")
    print("ok")
except pymysql.err.OperationalError as e:
    print("refused", e.args[0])
`
		for pw, want := range map[string]string{"s3cret": "ok", "wrong": "refused 1045"} {
			out, err := exec.Command(python(t), "-c", script, host, port, pw).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != want {
				t.Errorf("pymysql with password %q: %v %q, want %q", pw, err, out, want)
			}
		}
	})

	t.Run("whole versions during ingestion", func(t *testing.T) {
		// Each file adds 500 transactions in one commit: a query reads
		// whole versions only, so it counts a multiple of 500.
		const files, perFile = 8, 500
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		base, err := db.LatestVersion(cdc.RawTable)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			m := cdc.NewMerger(db, cdc.ParseOptions{Location: time.UTC}, nil)
			for f := range files {
				var b strings.Builder
				b.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
				for i := range perFile {
					fmt.Fprintf(&b, "W%d-%d,u@bank,M%03d,10.00,2024-12-22 10:00:00,completed\n", f, i, i%7)
				}
				if _, err := m.IngestData(ctx, fmt.Sprintf("w%d.csv", f), []byte(b.String())); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		script := `
import sys, pymysql
conn = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user="bi", database="upicdc")
target = int(sys.argv[3])
seen = set()
while True:
    with conn.cursor() as c:
        c.execute("SELECT COUNT(*), (SELECT MAX(version) FROM raw_upi_transactions_v1_history) FROM raw_upi_transactions_v1 WHERE transaction_id LIKE 'W%'")
        n, v = c.fetchone()
    seen.add((int(n), int(v)))
    if int(v) >= target:
        break
for n, v in sorted(seen):
    print(n, v)
`
		out, err := exec.Command(python(t), "-c", script, host, port, strconv.FormatInt(base+files, 10)).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var n, v int64
			if _, err := fmt.Sscan(line, &n, &v); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if n != (v-base)*perFile {
				t.Errorf("a query saw %d new rows at version %d: want %d (whole versions only)", n, v, (v-base)*perFile)
			}
		}
	})
}
