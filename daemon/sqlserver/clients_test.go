package sqlserver_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

// mariadb runs the mariadb CLI (batch mode: tab-separated, with a header)
// against addr.
func mariadb(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("mariadb", append([]string{"--protocol=tcp", "-h", host, "-P", port, "--batch", "--skip-ssl", "upicdc"}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

// pythonVenv is the venv .ci/run makes with pymysql and pandas.
func pythonVenv(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("UPICDC_SQL_PYTHON"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "upicdc-sql-venv", "bin", "python")
}

func TestMariaDBClientExplore(t *testing.T) {
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Skip("mariadb client not installed (.ci/run installs it)")
	}
	db := seedStore(t)
	addr := startServer(t, db, nil)
	for _, q := range []string{
		"SELECT * FROM aggregated_upi_transactions",
		"SELECT * FROM merchant_window_aggregates AS OF 2 WHERE merchant_id='M001'",
		"INSERT INTO aggregated_upi_transactions (merchant_id) VALUES ('x')",
		"SELECT * FROM raw_upi_transactions_v1 AS OF TIMESTAMP '2099-01-01 00:00:00'",
	} {
		out, err := mariadb(t, addr, "-e", q)
		t.Logf("%s: %v\n%s", q, err, strings.TrimSpace(out))
	}
}
