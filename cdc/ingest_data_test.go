package cdc_test

import (
	"context"
	"errors"
	"testing"

	"github.com/upicdc/upicdc/cdc"
)

// TestIngestData: content handed over by the caller is merged as IngestFile
// would merge the same file, and a name in no known format is a ParseError.
func TestIngestData(t *testing.T) {
	e := newEnv(t)
	body := header + "T1,u1,M1,100,2024-12-21 10:00:00,completed,\n"
	res, err := e.m.IngestData(context.Background(), "b1.csv", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "b1.csv" || res.Version != 1 || res.Rows != 1 {
		t.Errorf("result %+v, want b1.csv as version 1 with 1 row", res)
	}
	// The same bytes under another name (or through IngestFile) are a duplicate.
	if res := e.ingest("again.csv", body); !res.Duplicate || res.Previous.Name != "b1.csv" {
		t.Errorf("result %+v, want a duplicate of b1.csv", res)
	}
	_, err = e.m.IngestData(context.Background(), "b2.txt", []byte(body))
	var pe *cdc.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, cdc.ErrUnsupportedFormat) {
		t.Errorf("IngestData(b2.txt) = %v, want a ParseError for an unsupported format", err)
	}
}
