package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon/httpapi"
	"github.com/upicdc/upicdc/store"
)

// The seeded store's clock: every table is created at created, and batch
// i (1..3) is merged and processed at created + i hours.
var created = time.Date(2024, 12, 21, 12, 0, 0, 0, time.UTC)

// seeded returns an API over a store holding the seed's three batches,
// processed; as_of times without a zone are read in Asia/Kolkata.
func seeded(t *testing.T) *httptest.Server {
	t.Helper()
	db := seededDB(t)
	ist, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{
		DB:       db,
		Location: ist,
		Status:   func(context.Context) (any, error) { return map[string]int{"answer": 42}, nil },
		Ready:    func() (bool, string) { return false, "catching up" },
	}))
	t.Cleanup(srv.Close)
	return srv
}

// seededDB returns a store holding the seed's three batches, processed.
func seededDB(t *testing.T) *store.DB {
	t.Helper()
	defs, err := agg.Defs(agg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := created
	db, err := store.Open(t.TempDir(), store.Options{Tables: defs, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(context.Background()); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		db.Close()
	})
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	p := agg.NewProcessor(db, agg.Options{})
	for i, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		now = created.Add(time.Duration(i+1) * time.Hour)
		if _, err := m.IngestFile(context.Background(), "../../examples/batches/"+b); err != nil {
			t.Fatal(err)
		}
		if _, err := p.RunAvailableNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func fetch(t *testing.T, srv *httptest.Server, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); method != http.MethodHead && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, string(body)
}

func TestEndpoints(t *testing.T) {
	srv := seeded(t)
	tests := []struct {
		name, method, path string
		code               int
		contains           []string
	}{
		{"merchants", "GET", "/api/v1/merchants", 200, []string{
			`"version":3`,
			`{"merchant_id":"M001","total_sales":500,"total_refunds":-500,"net_sales":0,`,
			`{"merchant_id":"M003","total_sales":1500,"total_refunds":0,"net_sales":1500,`}},
		{"merchants at version 1", "GET", "/api/v1/merchants?version=1", 200, []string{`"version":1`, `"merchant_id":"M003","total_sales":0`}},
		{"merchants at a future version", "GET", "/api/v1/merchants?version=99", 404, []string{`version 99`}},
		{"merchants with a bad version", "GET", "/api/v1/merchants?version=abc", 400, []string{`"parameter":"version"`}},
		{"merchants with a negative version", "GET", "/api/v1/merchants?version=-1", 400, []string{`"parameter":"version"`}},
		{"unknown parameter", "GET", "/api/v1/merchants?verison=1", 400, []string{`"parameter":"verison"`, "unknown query parameter"}},
		{"merchants page", "GET", "/api/v1/merchants?limit=2", 200, []string{`"merchant_id":"M002"`, `"truncated":true,"next_after":"M002"`}},
		{"merchants next page", "GET", "/api/v1/merchants?limit=2&after=M002", 200, []string{`"merchant_id":"M003"`, `"merchant_id":"M004"`, `"truncated":false`}},
		{"merchants limit 0", "GET", "/api/v1/merchants?limit=0", 400, []string{`"parameter":"limit"`}},
		{"one merchant", "GET", "/api/v1/merchants/M001", 200, []string{`"merchant_id":"M001","total_sales":500,"total_refunds":-500`}},
		{"unknown merchant", "GET", "/api/v1/merchants/M999", 404, []string{`"error":"merchant \"M999\": not found"`}},
		{"merchant id too long", "GET", "/api/v1/merchants/" + strings.Repeat("x", 300), 400, []string{`"parameter":"id"`}},
		{"merchants as of a commit", "GET", "/api/v1/merchants?as_of=2024-12-21T14:00:00Z", 200, []string{`"version":2`, `"merchant_id":"M001","total_sales":500,"total_refunds":0`}},
		{"merchants as of between commits", "GET", "/api/v1/merchants?as_of=2024-12-21T13:59:59.999Z", 200, []string{`"version":1`, `"merchant_id":"M001","total_sales":0`}},
		{"merchants as of local time", "GET", "/api/v1/merchants?as_of=2024-12-21+19:30:00", 200, []string{`"version":2`}},
		{"merchants as of before the first commit", "GET", "/api/v1/merchants?as_of=2024-12-21T11:00:00Z", 404, []string{`"parameter":"as_of"`, "before the table's first commit (2024-12-21T12:00:00Z)"}},
		{"merchants with version and as_of", "GET", "/api/v1/merchants?version=1&as_of=2024-12-21T14:00:00Z", 400, []string{`"parameter":"as_of"`, "not both"}},
		{"merchants with a bad as_of", "GET", "/api/v1/merchants?as_of=yesterday", 400, []string{`"parameter":"as_of"`}},
		{"one merchant as of", "GET", "/api/v1/merchants/M001?as_of=2024-12-21T14:30:00Z", 200, []string{`{"merchant_id":"M001","total_sales":500,"total_refunds":0,"net_sales":500,`}},
		{"one merchant at a version", "GET", "/api/v1/merchants/M004?version=1", 404, []string{`merchant \"M004\": not found`}},
		{"merchant windows", "GET", "/api/v1/merchants/M001/windows?size=1d", 200, []string{`"table":"merchant_window_aggregates","version":3,"merchant_id":"M001","windows":[` +
			`{"merchant_id":"M001","window_size":"1d","window_start":"2024-12-21T00:00:00+05:30","window_end":"2024-12-22T00:00:00+05:30","total_sales":500,"total_refunds":-500,"net_sales":0,"sales_count":1,"refunds_count":1,"last_raw_version":3}]`}},
		{"merchant windows of every size", "GET", "/api/v1/merchants/M003/windows", 200, []string{`"window_size":"1d","window_start":"2024-12-21T00:00:00+05:30"`, `"window_size":"1w","window_start":"2024-12-16T00:00:00+05:30","window_end":"2024-12-23T00:00:00+05:30","total_sales":1500`}},
		{"merchant windows from a later day", "GET", "/api/v1/merchants/M001/windows?size=1d&from=2024-12-22", 200, []string{`"windows":[]`}},
		{"merchant windows from inside the day", "GET", "/api/v1/merchants/M001/windows?size=1d&from=2024-12-21+18:00:00&to=2024-12-21+18:00:00", 200, []string{`"window_start":"2024-12-21T00:00:00+05:30"`}},
		{"merchant windows to an earlier day", "GET", "/api/v1/merchants/M001/windows?to=2024-12-15", 200, []string{`"windows":[]`}},
		{"merchant windows as of", "GET", "/api/v1/merchants/M001/windows?size=1d&as_of=2024-12-21T14:00:00Z", 200, []string{`"version":2`, `"total_sales":500,"total_refunds":0,"net_sales":500,"sales_count":1,"refunds_count":0,"last_raw_version":2`}},
		{"merchant windows with a bad size", "GET", "/api/v1/merchants/M001/windows?size=2d", 400, []string{`"parameter":"size"`, "1h, 1d, 1w"}},
		{"merchant windows with a bad from", "GET", "/api/v1/merchants/M001/windows?from=soon", 400, []string{`"parameter":"from"`}},
		{"merchant windows to before from", "GET", "/api/v1/merchants/M001/windows?from=2024-12-22&to=2024-12-21", 400, []string{`"parameter":"to"`}},
		{"one window", "GET", "/api/v1/windows?size=1d&start=2024-12-21", 200, []string{
			`"table":"merchant_window_aggregates","version":3,"window_size":"1d","window_start":"2024-12-21T00:00:00+05:30","window_end":"2024-12-22T00:00:00+05:30","merchants":[` +
				`{"merchant_id":"M003","window_size":"1d","window_start":"2024-12-21T00:00:00+05:30","window_end":"2024-12-22T00:00:00+05:30","total_sales":1500,"total_refunds":0,"net_sales":1500,"sales_count":1,"refunds_count":0,"last_raw_version":3},` +
				`{"merchant_id":"M001",`, `"truncated":false`}},
		{"one window by a time inside it", "GET", "/api/v1/windows?size=1w&start=2024-12-21T10:00:00Z", 200, []string{`"window_start":"2024-12-16T00:00:00+05:30"`, `"merchant_id":"M003"`}},
		{"one window, first page", "GET", "/api/v1/windows?size=1d&start=2024-12-21&limit=1", 200, []string{`"merchant_id":"M003"`, `"truncated":true,"next_after":"M003"`}},
		{"one window, next page", "GET", "/api/v1/windows?size=1d&start=2024-12-21&limit=1&after=M003", 200, []string{`"merchants":[{"merchant_id":"M001",`, `"truncated":false`}},
		{"one window after an absent merchant", "GET", "/api/v1/windows?size=1d&start=2024-12-21&after=M404", 400, []string{`"parameter":"after"`}},
		{"an empty window", "GET", "/api/v1/windows?size=1h&start=2024-12-21", 200, []string{`"merchants":[]`}},
		{"one window as of", "GET", "/api/v1/windows?size=1d&start=2024-12-21&as_of=2024-12-21T14:00:00Z", 200, []string{`"version":2`, `"merchants":[{"merchant_id":"M001",`}},
		{"one window without start", "GET", "/api/v1/windows?size=1d", 400, []string{`"parameter":"start"`}},
		{"one window without size", "GET", "/api/v1/windows?start=2024-12-21", 400, []string{`"parameter":"size"`}},
		{"history", "GET", "/api/v1/tables/raw_upi_transactions_v1/history", 200, []string{
			`{"version":0,"timestamp":"2024-12-21T12:00:00.000Z","operation":"CREATE TABLE",`, `"source":null,"txn":null}`,
			`"operation":"MERGE"`, `"source":{"name":"batch3.csv",`}},
		{"history as of", "GET", "/api/v1/tables/raw_upi_transactions_v1/history?as_of=2024-12-21T14:00:00Z", 200, []string{`"version":2,"timestamp":"2024-12-21T14:00:00.000Z"`, `"name":"batch2.csv"`}},
		{"windows history", "GET", "/api/v1/tables/merchant_window_aggregates/history", 200, []string{`"operation":"CREATE TABLE"`, `"txn":{"appId":"merchant_aggregates","version":2}`}},
		{"windows changes", "GET", "/api/v1/tables/merchant_window_aggregates/changes?from=3", 200, []string{`"merchant_id":"M003","window_size":"1d",`, `"_change_type":"insert","_commit_version":3,"_commit_timestamp":"2024-12-21T15:00:00.000Z"`}},
		{"agg history has txn", "GET", "/api/v1/tables/aggregated_upi_transactions/history", 200, []string{`"txn":{"appId":"merchant_aggregates","version":2}`}},
		{"history page", "GET", "/api/v1/tables/raw_upi_transactions_v1/history?from=1&limit=2", 200, []string{`"truncated":true`, `"next_from":3`}},
		{"unknown table", "GET", "/api/v1/tables/nope/history", 404, []string{`unknown table \"nope\" (tables: raw_upi_transactions_v1,aggregated_upi_transactions,merchant_window_aggregates,merchant_alerts,pipeline_audit)`}},
		{"changes", "GET", "/api/v1/tables/raw_upi_transactions_v1/changes?from=3&to=3", 200, []string{
			`"transaction_id":"T001","upi_id":"upi1@bank","merchant_id":"M001","transaction_amount":500,"transaction_time":"2024-12-21T10:15:00Z","transaction_status":"completed","_change_type":"update_preimage","_commit_version":3`}},
		{"agg changes", "GET", "/api/v1/tables/aggregated_upi_transactions/changes?from=1", 200, []string{`"_change_type":"insert"`, `"_change_type":"update_postimage"`}},
		{"changes of an unknown table", "GET", "/api/v1/tables/nope/changes?from=0", 404, []string{"unknown table"}},
		{"changes without from", "GET", "/api/v1/tables/raw_upi_transactions_v1/changes", 400, []string{`"parameter":"from"`, "required"}},
		{"changes with bad from", "GET", "/api/v1/tables/raw_upi_transactions_v1/changes?from=x", 400, []string{`"parameter":"from"`}},
		{"changes from the future", "GET", "/api/v1/tables/raw_upi_transactions_v1/changes?from=9", 400, []string{`"parameter":"from"`, "latest is 3"}},
		{"changes to before from", "GET", "/api/v1/tables/raw_upi_transactions_v1/changes?from=2&to=1", 400, []string{`"parameter":"to"`}},
		{"changes limit too big", "GET", "/api/v1/tables/raw_upi_transactions_v1/changes?from=0&limit=100000", 400, []string{`"parameter":"limit"`}},
		{"transaction", "GET", "/api/v1/transactions/T001", 200, []string{
			`"transaction_id":"T001","versions":[{"_commit_version":1,"step":0,"_commit_timestamp":"2024-12-21T13:00:00.000Z","deleted":false,"deleted_at":null,"transaction_id":"T001",`,
			`"transaction_status":"refunded"`}},
		{"unknown transaction", "GET", "/api/v1/transactions/T999", 404, []string{`not found`}},
		{"status", "GET", "/api/v1/status", 200, []string{`{"answer":42}`}},
		{"healthz", "GET", "/healthz", 200, []string{`"ok"`}},
		{"readyz", "GET", "/readyz", 503, []string{`"reason":"catching up"`}},
		{"audit", "GET", "/api/v1/audit", 200, []string{`"table":"pipeline_audit","version":3,"outcome":"all","rows":[{"audit_id":1,"recorded_at":"2024-12-21T13:00:00Z","outcome":"merged","origin":"ingest","file":"batch1.csv",`,
			`"rows_read":3,"inserted":3,"updated":0,"deleted":0,"stale":0,"noop":0,"raw_version":1,"reason":null,"file_initiated":3000,`}},
		{"audit since", "GET", "/api/v1/audit?since=2024-12-21T14:00:00Z", 200, []string{`"rows":[{"audit_id":2,`, `"file":"batch3.csv"`}},
		{"audit of an outcome", "GET", "/api/v1/audit?outcome=rejected", 200, []string{`"outcome":"rejected","rows":[]`}},
		{"audit with a bad outcome", "GET", "/api/v1/audit?outcome=lost", 400, []string{`"parameter":"outcome"`}},
		{"audit with a bad since", "GET", "/api/v1/audit?since=soon", 400, []string{`"parameter":"since"`}},
		{"unknown endpoint", "GET", "/api/v2/merchants", 404, []string{"no such endpoint"}},
		{"read-only", "POST", "/api/v1/merchants", 405, []string{"read-only"}},
		{"metrics absent", "GET", "/metrics", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := fetch(t, srv, tc.method, tc.path)
			if code != tc.code {
				t.Errorf("status %d, want %d\n%s", code, tc.code, body)
			}
			for _, want := range tc.contains {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %s\n%s", want, body)
				}
			}
		})
	}
}

// TestChangesPagination reads the raw change feed one page of 2 rows at a
// time, following "next", and gets exactly the unpaged feed.
func TestChangesPagination(t *testing.T) {
	srv := seeded(t)
	type page struct {
		Changes   []json.RawMessage `json:"changes"`
		Truncated bool              `json:"truncated"`
		Next      *struct{ From, Skip int64 }
	}
	decode := func(path string) page {
		t.Helper()
		code, body := fetch(t, srv, "GET", path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var p page
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := decode("/api/v1/tables/raw_upi_transactions_v1/changes?from=0")
	if all.Truncated || len(all.Changes) < 5 {
		t.Fatalf("full feed: %d rows, truncated=%v", len(all.Changes), all.Truncated)
	}
	var paged []json.RawMessage
	path := "/api/v1/tables/raw_upi_transactions_v1/changes?from=0&limit=2"
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		p := decode(path)
		paged = append(paged, p.Changes...)
		if !p.Truncated {
			break
		}
		path = "/api/v1/tables/raw_upi_transactions_v1/changes?limit=2&from=" + itoa(p.Next.From) + "&skip=" + itoa(p.Next.Skip)
	}
	if len(paged) != len(all.Changes) {
		t.Fatalf("paged %d rows, want %d", len(paged), len(all.Changes))
	}
	for i := range paged {
		if string(paged[i]) != string(all.Changes[i]) {
			t.Errorf("row %d: %s, want %s", i, paged[i], all.Changes[i])
		}
	}
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestServerLimits runs the API behind NewServer, the server `serve` uses:
// oversized headers are refused before any handler runs, and a request body
// beyond the cap is not read.
func TestServerLimits(t *testing.T) {
	api := seeded(t) // a served store; its handler is reused below
	srv := httptest.NewUnstartedServer(api.Config.Handler)
	limited := httpapi.NewServer(api.Config.Handler, slog.New(slog.DiscardHandler))
	srv.Config = limited
	srv.Start()
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/merchants", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("x", 64<<10))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: status %d, want 431", resp.StatusCode)
	}
	if code, _ := fetch(t, srv, http.MethodGet, "/api/v1/merchants"); code != http.StatusOK {
		t.Errorf("normal request after it: status %d", code)
	}
	if limited.ReadHeaderTimeout <= 0 || limited.ReadTimeout <= 0 || limited.WriteTimeout <= 0 || limited.IdleTimeout <= 0 {
		t.Errorf("server without timeouts: %+v", limited)
	}
}
