package httpapi

import (
	"time"

	"github.com/upicdc/upicdc/store"
)

// money is an amount written as an exact JSON number ("500.50").
type money store.Paise

func (m money) MarshalJSON() ([]byte, error) { return []byte(store.Paise(m).String()), nil }

// Timestamp layouts: transaction_time keeps microseconds, commit
// timestamps are milliseconds (as the CLI prints them).
const (
	microLayout = "2006-01-02T15:04:05.999999Z07:00"
	milliLayout = "2006-01-02T15:04:05.000Z07:00"
)

// aggregateJSON is a row of aggregated_upi_transactions, with the CLI's
// column names.
type aggregateJSON struct {
	MerchantID     string `json:"merchant_id"`
	TotalSales     money  `json:"total_sales"`
	TotalRefunds   money  `json:"total_refunds"`
	NetSales       money  `json:"net_sales"`
	InitiatedCount int64  `json:"initiated_count"`
	CompletedCount int64  `json:"completed_count"`
	FailedCount    int64  `json:"failed_count"`
	RefundedCount  int64  `json:"refunded_count"`
	LastRawVersion int64  `json:"last_raw_version"`
}

func aggJSON(a store.Aggregate) aggregateJSON {
	return aggregateJSON{
		MerchantID: a.MerchantID, TotalSales: money(a.TotalSales), TotalRefunds: money(a.TotalRefunds),
		NetSales: money(a.NetSales), InitiatedCount: a.Initiated, CompletedCount: a.Completed,
		FailedCount: a.Failed, RefundedCount: a.Refunded, LastRawVersion: a.LastRawVersion,
	}
}

// rowJSON is a row of raw_upi_transactions_v1.
type rowJSON struct {
	TransactionID     string `json:"transaction_id"`
	UPIID             string `json:"upi_id"`
	MerchantID        string `json:"merchant_id"`
	TransactionAmount money  `json:"transaction_amount"`
	TransactionTime   string `json:"transaction_time"`
	TransactionStatus string `json:"transaction_status"`
}

func (s *server) rowJSON(r store.Row) rowJSON {
	status := ""
	if r.Status != store.StatusInvalid {
		status = r.Status.String()
	}
	return rowJSON{
		TransactionID: r.TransactionID, UPIID: r.UPIID, MerchantID: r.MerchantID,
		TransactionAmount: money(r.Amount), TransactionTime: s.micros(r.Time), TransactionStatus: status,
	}
}

// changeMeta are the change feed's metadata columns.
type changeMeta struct {
	ChangeType      string `json:"_change_type"`
	CommitVersion   int64  `json:"_commit_version"`
	CommitTimestamp string `json:"_commit_timestamp"`
}

type rawChangeJSON struct {
	rowJSON
	changeMeta
}

type aggChangeJSON struct {
	aggregateJSON
	changeMeta
}

// versionJSON is one image in a transaction's history.
type versionJSON struct {
	CommitVersion   int64   `json:"_commit_version"`
	Step            uint32  `json:"step"`
	CommitTimestamp string  `json:"_commit_timestamp"`
	Deleted         bool    `json:"deleted"`
	DeletedAt       *string `json:"deleted_at"`
	rowJSON
}

// commitJSON is a commit log entry (Delta's commitInfo) with a readable time.
type commitJSON struct {
	Version             int64             `json:"version"`
	Timestamp           int64             `json:"timestamp"`
	Time                string            `json:"time"`
	Operation           string            `json:"operation"`
	OperationParameters map[string]string `json:"operationParameters"`
	OperationMetrics    map[string]int64  `json:"operationMetrics"`
	Source              *store.Source     `json:"source,omitempty"`
	Txn                 *store.TxnID      `json:"txn,omitempty"`
}

func (s *server) commitJSON(c store.CommitInfo) commitJSON {
	return commitJSON{
		Version: c.Version, Timestamp: c.Timestamp, Time: s.millis(c.Timestamp), Operation: c.Operation,
		OperationParameters: c.OperationParameters, OperationMetrics: c.OperationMetrics, Source: c.Source, Txn: c.Txn,
	}
}

func (s *server) micros(us int64) string { return time.UnixMicro(us).In(s.loc).Format(microLayout) }
func (s *server) millis(ms int64) string { return time.UnixMilli(ms).In(s.loc).Format(milliLayout) }
