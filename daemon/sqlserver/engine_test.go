package sqlserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/daemon/sqlserver"
	"github.com/upicdc/upicdc/store"
)

// lines renders a result as one line per row, cells separated by spaces.
func lines(t *testing.T, e *sqlserver.Engine, q string) string {
	t.Helper()
	res, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var b strings.Builder
	for _, r := range res.Rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(' ')
			}
			if tm, ok := v.(time.Time); ok {
				v = tm.Format("2006-01-02 15:04:05.999999")
			}
			fmt.Fprint(&b, v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestEveryStoreTableIsASQLTable(t *testing.T) {
	db := seedStore(t)
	e := sqlserver.NewEngine(db, sqlserver.Options{})
	var want []string
	for _, tb := range db.Tables() {
		want = append(want, tb.Name, tb.Name+"_changes", tb.Name+"_history")
	}
	slices.Sort(want)
	if got := lines(t, e, "SHOW TABLES"); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("SHOW TABLES:\n%s\nwant\n%s", got, want)
	}
	got := lines(t, e, "SELECT column_name, column_type FROM information_schema.columns WHERE table_name = 'merchant_window_aggregates' ORDER BY ordinal_position")
	if want := "merchant_id varchar(255)\nwindow_size varchar(255)\nwindow_start datetime(6)\nwindow_end datetime(6)\ntotal_sales decimal(18,2)\n"; !strings.HasPrefix(got, want) {
		t.Errorf("column types:\n%s\nwant a prefix\n%s", got, want)
	}
}

// TestKeyLookupsReadTheKeyRange proves key filters are B+tree reads: with
// sql.max_rows at the number of rows the filter selects, the query passes
// (only those rows are read), and a scan of the same table fails.
func TestKeyLookupsReadTheKeyRange(t *testing.T) {
	db := seedStore(t)
	for _, tc := range []struct {
		name, query, want string
		maxRows           int64
		scan              string
	}{
		{"merchant", "SELECT merchant_id, net_sales FROM aggregated_upi_transactions WHERE merchant_id = 'M003'", "M003 1500\n", 1,
			"SELECT merchant_id FROM aggregated_upi_transactions WHERE net_sales = 1500"},
		{"transaction", "SELECT transaction_id, transaction_status FROM raw_upi_transactions_v1 WHERE transaction_id = 'T001'", "T001 refunded\n", 1,
			"SELECT transaction_id FROM raw_upi_transactions_v1 WHERE upi_id = 'upi1@bank'"},
		{"window range", "SELECT window_start, net_sales FROM merchant_window_aggregates WHERE merchant_id = 'M003' AND window_size = '1d' AND window_start BETWEEN '2024-12-21 00:00:00' AND '2024-12-21 00:00:00'",
			"2024-12-21 00:00:00 1500\n", 1,
			"SELECT window_start FROM merchant_window_aggregates WHERE window_size = '1d' AND net_sales = 1500"},
		{"merchant prefix", "SELECT window_size, window_start FROM merchant_window_aggregates WHERE merchant_id = 'M003' ORDER BY 1", "1d 2024-12-21 00:00:00\n1w 2024-12-16 00:00:00\n", 2,
			"SELECT window_start FROM merchant_window_aggregates WHERE net_sales = 1500"},
		{"change feed versions", "SELECT transaction_id, _change_type FROM raw_upi_transactions_v1_changes WHERE _commit_version = 3 AND _change_type = 'update_postimage' ORDER BY 1", "T001 update_postimage\nT003 update_postimage\n", 4,
			"SELECT transaction_id FROM raw_upi_transactions_v1_changes WHERE _change_type = 'insert'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sqlserver.NewEngine(db, sqlserver.Options{MaxRows: tc.maxRows})
			if got := lines(t, e, tc.query); got != tc.want {
				t.Errorf("%s:\n got %q\nwant %q", tc.query, got, tc.want)
			}
			if _, err := e.Query(context.Background(), tc.scan); !errors.Is(err, sqlserver.ErrTooManyRows) {
				t.Errorf("%s: err %v, want ErrTooManyRows (a scan)", tc.scan, err)
			}
		})
	}
}

func TestAsOf(t *testing.T) {
	db := seedStore(t)
	e := sqlserver.NewEngine(db, sqlserver.Options{})
	commits, err := db.History("aggregated_upi_transactions")
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(commits[2].Timestamp).UTC().Format("2006-01-02 15:04:05.000")
	q := "SELECT merchant_id, total_sales FROM aggregated_upi_transactions AS OF %s ORDER BY 1"
	v2 := lines(t, e, fmt.Sprintf(q, "2"))
	if want := "M001 500\nM002 0\nM003 0\nM004 0\n"; v2 != want {
		t.Errorf("AS OF 2:\n%s\nwant\n%s", v2, want)
	}
	for _, asOf := range []string{"'" + at + "'", "TIMESTAMP '" + at + "'"} {
		if got := lines(t, e, fmt.Sprintf(q, asOf)); got != v2 {
			t.Errorf("AS OF %s:\n%s\nwant version 2's\n%s", asOf, got, v2)
		}
	}
	for _, bad := range []string{"99", "'2000-01-01 00:00:00'"} {
		if _, err := e.Query(context.Background(), fmt.Sprintf(q, bad)); err == nil {
			t.Errorf("AS OF %s: no error", bad)
		}
	}
	var before *store.BeforeFirstCommitError
	if _, err := e.Query(context.Background(), fmt.Sprintf(q, "'2000-01-01 00:00:00'")); !errors.As(err, &before) {
		t.Errorf("AS OF before the first commit: %v, want a BeforeFirstCommitError", err)
	}
}

func TestWritesAreRefused(t *testing.T) {
	db := seedStore(t)
	e := sqlserver.NewEngine(db, sqlserver.Options{})
	for _, q := range []string{
		"DELETE FROM aggregated_upi_transactions",
		"UPDATE aggregated_upi_transactions SET net_sales = 0",
		"INSERT INTO aggregated_upi_transactions (merchant_id) VALUES ('x')",
		"CREATE TABLE x (a int)",
		"DROP TABLE raw_upi_transactions_v1",
		"TRUNCATE TABLE merchant_window_aggregates",
	} {
		if _, err := e.Query(context.Background(), q); !errors.Is(err, sqlserver.ErrReadOnly) {
			t.Errorf("%s: %v, want ErrReadOnly", q, err)
		}
	}
	if got := lines(t, e, "SELECT COUNT(*) FROM aggregated_upi_transactions"); got != "4\n" {
		t.Errorf("after the refused writes: %q", got)
	}
}

func TestNonLoopbackNeedsUsers(t *testing.T) {
	db := seedStore(t)
	_, err := sqlserver.NewServer(db, sqlserver.ServerOptions{Listen: "0.0.0.0:0"})
	if !errors.Is(err, sqlserver.ErrNoUsers) {
		t.Errorf("0.0.0.0 without users: %v, want ErrNoUsers", err)
	}
}
