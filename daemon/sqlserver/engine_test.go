package sqlserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/daemon/sqlserver"
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
			fmt.Fprint(&b, v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestEngineExplore(t *testing.T) {
	db := seedStore(t)
	e := sqlserver.NewEngine(db, sqlserver.Options{})
	for _, q := range []string{
		"SHOW TABLES",
		"SELECT * FROM aggregated_upi_transactions",
		"SELECT merchant_id, net_sales FROM aggregated_upi_transactions AS OF 1",
		"SELECT * FROM merchant_window_aggregates WHERE merchant_id='M001' AND window_size='1d' AND window_start BETWEEN '2024-12-01' AND '2024-12-31' ORDER BY 3",
		"EXPLAIN SELECT * FROM merchant_window_aggregates WHERE merchant_id='M001' AND window_size='1d' AND window_start BETWEEN '2024-12-01' AND '2024-12-31'",
		"EXPLAIN SELECT * FROM aggregated_upi_transactions WHERE merchant_id = 'M001'",
		"SELECT transaction_id, _change_type, _commit_version FROM raw_upi_transactions_v1_changes WHERE _commit_version BETWEEN 2 AND 3",
		"EXPLAIN SELECT transaction_id FROM raw_upi_transactions_v1_changes WHERE _commit_version BETWEEN 2 AND 3",
		"SELECT version, operation, source FROM raw_upi_transactions_v1_history",
		"SELECT merchant_id, SUM(transaction_amount) FROM raw_upi_transactions_v1 GROUP BY merchant_id",
		"SELECT * FROM raw_upi_transactions_v1 WHERE transaction_id = 'T001'",
	} {
		t.Logf("%s\n%s", q, lines(t, e, q))
	}
	for _, q := range []string{"DELETE FROM aggregated_upi_transactions", "CREATE TABLE x (a int)", "INSERT INTO aggregated_upi_transactions (merchant_id) VALUES ('x')"} {
		_, err := e.Query(context.Background(), q)
		t.Logf("%s: %v", q, err)
	}
}
