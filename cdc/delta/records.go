package delta

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/upicdc/upicdc/store"
)

// Parquet layouts of upicdc's tables. Money is decimal(18,2) stored as
// INT64 paise; transaction_time is INT64 TIMESTAMP(MICROS, UTC-adjusted):
// parquet-go's default for timestamps is NANOS, which Spark refuses.

type rawRecord struct {
	TransactionID string `parquet:"transaction_id"`
	UPIID         string `parquet:"upi_id"`
	MerchantID    string `parquet:"merchant_id,dict"`
	Amount        int64  `parquet:"transaction_amount,decimal(2:18)"`
	Time          int64  `parquet:"transaction_time,timestamp(microsecond:utc)"`
	Status        string `parquet:"transaction_status,dict"`
}

// rawChange is a change-data row: the data columns, then _change_type. The
// embedded record's columns are inlined, in order.
type rawChange struct {
	rawRecord
	ChangeType string `parquet:"_change_type,dict"`
}

type aggRecord struct {
	MerchantID     string `parquet:"merchant_id"`
	TotalSales     int64  `parquet:"total_sales,decimal(2:18)"`
	TotalRefunds   int64  `parquet:"total_refunds,decimal(2:18)"`
	NetSales       int64  `parquet:"net_sales,decimal(2:18)"`
	Initiated      int64  `parquet:"initiated_count"`
	Completed      int64  `parquet:"completed_count"`
	Failed         int64  `parquet:"failed_count"`
	Refunded       int64  `parquet:"refunded_count"`
	LastRawVersion int64  `parquet:"last_raw_version"`
}

// aggChange is a change-data row of the aggregated table.
type aggChange struct {
	aggRecord
	ChangeType string `parquet:"_change_type,dict"`
}

func rawRecordOf(r store.Row) rawRecord {
	status := ""
	if r.Status != store.StatusInvalid {
		status = r.Status.String()
	}
	return rawRecord{TransactionID: r.TransactionID, UPIID: r.UPIID, MerchantID: r.MerchantID,
		Amount: int64(r.Amount), Time: r.Time, Status: status}
}

func aggRecordOf(a store.Aggregate) aggRecord {
	return aggRecord{MerchantID: a.MerchantID, TotalSales: int64(a.TotalSales), TotalRefunds: int64(a.TotalRefunds),
		NetSales: int64(a.NetSales), Initiated: a.Initiated, Completed: a.Completed, Failed: a.Failed,
		Refunded: a.Refunded, LastRawVersion: a.LastRawVersion}
}

// schemaJSON builds a Delta schemaString from (name, type) pairs.
func schemaJSON(cols ...[2]string) string {
	type field struct {
		Name     string         `json:"name"`
		Type     string         `json:"type"`
		Nullable bool           `json:"nullable"`
		Metadata map[string]any `json:"metadata"`
	}
	st := struct {
		Type   string  `json:"type"`
		Fields []field `json:"fields"`
	}{Type: "struct"}
	for _, c := range cols {
		st.Fields = append(st.Fields, field{Name: c[0], Type: c[1], Nullable: true, Metadata: map[string]any{}})
	}
	data, _ := json.Marshal(st)
	return string(data)
}

var (
	rawSchema = schemaJSON(
		[2]string{"transaction_id", "string"}, [2]string{"upi_id", "string"}, [2]string{"merchant_id", "string"},
		[2]string{"transaction_amount", "decimal(18,2)"}, [2]string{"transaction_time", "timestamp"},
		[2]string{"transaction_status", "string"})
	aggSchema = schemaJSON(
		[2]string{"merchant_id", "string"}, [2]string{"total_sales", "decimal(18,2)"},
		[2]string{"total_refunds", "decimal(18,2)"}, [2]string{"net_sales", "decimal(18,2)"},
		[2]string{"initiated_count", "long"}, [2]string{"completed_count", "long"},
		[2]string{"failed_count", "long"}, [2]string{"refunded_count", "long"},
		[2]string{"last_raw_version", "long"})
)

// minMax tracks one column's bounds for Delta file statistics.
type minMax[T int64 | string] struct {
	set      bool
	min, max T
}

func (m *minMax[T]) add(v T) {
	if !m.set {
		m.set, m.min, m.max = true, v, v
		return
	}
	m.min, m.max = min(m.min, v), max(m.max, v)
}

// statsJSON renders Delta's per-file stats. Decimals are JSON numbers,
// timestamps ISO 8601 UTC in milliseconds: the minimum rounded down, the
// maximum rounded up, so data skipping never drops a matching file.
type statsBuilder struct {
	n     int64
	cols  []string
	kinds []byte // 's' string, 'd' decimal(·,2), 't' timestamp micros, 'l' long
	strs  []minMax[string]
	ints  []minMax[int64]
}

func newStats(cols []string, kinds string) *statsBuilder {
	return &statsBuilder{cols: cols, kinds: []byte(kinds), strs: make([]minMax[string], len(cols)), ints: make([]minMax[int64], len(cols))}
}

func (s *statsBuilder) json() string {
	minV, maxV, nulls := map[string]any{}, map[string]any{}, map[string]any{}
	for i, c := range s.cols {
		nulls[c] = 0
		if s.n == 0 {
			continue
		}
		switch s.kinds[i] {
		case 's':
			minV[c], maxV[c] = s.strs[i].min, s.strs[i].max
		case 'd':
			minV[c], maxV[c] = json.Number(store.Paise(s.ints[i].min).Decimal()), json.Number(store.Paise(s.ints[i].max).Decimal())
		case 'l':
			minV[c], maxV[c] = s.ints[i].min, s.ints[i].max
		case 't':
			lo := time.UnixMicro(s.ints[i].min).UTC().Truncate(time.Millisecond)
			hi := time.UnixMicro(s.ints[i].max).UTC()
			if r := hi.Truncate(time.Millisecond); !r.Equal(hi) {
				hi = r.Add(time.Millisecond)
			}
			minV[c], maxV[c] = lo.Format("2006-01-02T15:04:05.000Z"), hi.Format("2006-01-02T15:04:05.000Z")
		}
	}
	data, _ := json.Marshal(map[string]any{"numRecords": s.n, "minValues": minV, "maxValues": maxV, "nullCount": nulls})
	return string(data)
}

func rawStats(rows []rawRecord) string {
	s := newStats(strings.Split("transaction_id upi_id merchant_id transaction_amount transaction_time transaction_status", " "), "sssdts")
	for i := range rows {
		r := &rows[i]
		s.n++
		s.strs[0].add(r.TransactionID)
		s.strs[1].add(r.UPIID)
		s.strs[2].add(r.MerchantID)
		s.ints[3].add(r.Amount)
		s.ints[4].add(r.Time)
		s.strs[5].add(r.Status)
	}
	return s.json()
}

func aggStats(rows []aggRecord) string {
	s := newStats(strings.Split("merchant_id total_sales total_refunds net_sales initiated_count completed_count failed_count refunded_count last_raw_version", " "), "sdddlllll")
	for i := range rows {
		r := &rows[i]
		s.n++
		s.strs[0].add(r.MerchantID)
		for j, v := range []int64{r.TotalSales, r.TotalRefunds, r.NetSales, r.Initiated, r.Completed, r.Failed, r.Refunded, r.LastRawVersion} {
			s.ints[j+1].add(v)
		}
	}
	return s.json()
}
