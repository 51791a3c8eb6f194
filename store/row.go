package store

import (
	"fmt"
	"strconv"
	"time"
)

// Paise is an amount of money in integer minor units (1 rupee = 100 paise).
// Money never passes through floating point anywhere in upicdc.
type Paise int64

// MaxPaise is the largest amount a decimal(18,2) column can hold, in paise.
const MaxPaise Paise = 999_999_999_999_999_999

// String formats p the way the seed's tables do: whole rupees without a
// fraction ("500", "-500"), otherwise exactly two decimals ("500.50").
func (p Paise) String() string {
	neg := p < 0
	u := uint64(p)
	if neg {
		u = uint64(-p)
	}
	s := strconv.FormatUint(u/100, 10)
	if f := u % 100; f != 0 {
		s += fmt.Sprintf(".%02d", f)
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Decimal formats p with exactly two decimals ("500.00"), as decimal(18,2).
func (p Paise) Decimal() string {
	neg := p < 0
	u := uint64(p)
	if neg {
		u = uint64(-p)
	}
	s := fmt.Sprintf("%d.%02d", u/100, u%100)
	if neg {
		s = "-" + s
	}
	return s
}

// Status is a UPI transaction's status.
type Status uint8

// The statuses DESIGN.md allows. The zero value is invalid on purpose, so a
// row that was never given a status cannot pass for "initiated".
const (
	StatusInvalid Status = iota
	StatusInitiated
	StatusCompleted
	StatusFailed
	StatusRefunded
)

var statusNames = [...]string{"", "initiated", "completed", "failed", "refunded"}

// String returns the lower-case status name used in files and tables.
func (s Status) String() string {
	if int(s) < len(statusNames) && s != StatusInvalid {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus maps a lower-case status name to its Status.
func ParseStatus(s string) (Status, bool) {
	for i := 1; i < len(statusNames); i++ {
		if statusNames[i] == s {
			return Status(i), true
		}
	}
	return StatusInvalid, false
}

// Row is one row of raw_upi_transactions_v1.
type Row struct {
	TransactionID string
	UPIID         string
	MerchantID    string
	Amount        Paise
	// Time is transaction_time in microseconds since the Unix epoch, UTC
	// (Delta's TIMESTAMP precision).
	Time   int64
	Status Status
}

// TimeUTC returns the row's transaction_time as a time.Time in UTC.
func (r Row) TimeUTC() time.Time { return time.UnixMicro(r.Time).UTC() }
