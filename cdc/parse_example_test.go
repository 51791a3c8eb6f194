package cdc_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/upicdc/upicdc/cdc"
)

func ExampleParse() {
	data := []byte(`transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,op
T001,upi1@bank,M001,500.0,2024-12-21 10:00:00,initiated,
T002,upi2@bank,M002,1000.50,2024-12-21T10:05:00+05:30,completed,upsert
T003,,,,2024-12-21 10:10:00,,delete
`)
	rows, err := cdc.Parse(data, "batch1.csv", cdc.FormatCSV, cdc.ParseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range rows {
		r := in.Row
		if in.Op == cdc.OpDelete {
			// A delete needs only the id and the time that orders it.
			fmt.Println(in.Pos, in.Op, r.TransactionID, r.TimeUTC().Format(time.RFC3339))
			continue
		}
		fmt.Println(in.Pos, in.Op, r.TransactionID, r.MerchantID, r.Amount, r.TimeUTC().Format(time.RFC3339), r.Status)
	}

	_, err = cdc.Parse([]byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n"+
		"T001,upi1@bank,M001,12.345,2024-12-21 10:00:00,initiated\n"), "batch2.csv", cdc.FormatCSV, cdc.ParseOptions{})
	fmt.Println(err)
	fmt.Println(errors.Is(err, cdc.ErrBadAmount))
	// Output:
	// 2 upsert T001 M001 500 2024-12-21T10:00:00Z initiated
	// 3 upsert T002 M002 1000.50 2024-12-21T04:35:00Z completed
	// 4 delete T003 2024-12-21T10:10:00Z
	// batch2.csv: line 2: transaction_amount: "12.345" has more than 2 decimals
	// true
}
