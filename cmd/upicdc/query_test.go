package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/daemon/httpapi"
	"github.com/upicdc/upicdc/store"
)

// seeded returns a data dir holding the seed's three batches, each merged
// and processed by its own run of the binary (so commits are apart in
// time).
func seeded(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	for _, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		runOK(t, "--data-dir="+data, "ingest", "../../examples/batches/"+b)
		runOK(t, "--data-dir="+data, "process")
	}
	return data
}

// commitTimes returns a table's commit timestamps by version, from
// `history --format json`.
func commitTimes(t *testing.T, data, table string) []time.Time {
	t.Helper()
	var h []struct {
		Version   int64  `json:"version"`
		Timestamp string `json:"timestamp"`
	}
	decode(t, runOK(t, "--data-dir="+data, "history", "--table="+table, "--format=json"), &h)
	out := make([]time.Time, len(h))
	for i, c := range h {
		ts, err := time.Parse(time.RFC3339Nano, c.Timestamp)
		if err != nil || c.Version != int64(i) {
			t.Fatalf("history row %d: version %d timestamp %q: %v", i, c.Version, c.Timestamp, err)
		}
		out[i] = ts
	}
	return out
}

func TestWindowsCommand(t *testing.T) {
	data := seeded(t)
	dd := "--data-dir=" + data
	const m001 = `{"merchant_id":"M001","window_size":"1d","window_start":"2024-12-21T00:00:00+05:30","window_end":"2024-12-22T00:00:00+05:30",` +
		`"total_sales":500,"total_refunds":-500,"net_sales":0,"sales_count":1,"refunds_count":1,"last_raw_version":3}`
	const m003 = `{"merchant_id":"M003","window_size":"1d","window_start":"2024-12-21T00:00:00+05:30","window_end":"2024-12-22T00:00:00+05:30",` +
		`"total_sales":1500,"total_refunds":0,"net_sales":1500,"sales_count":1,"refunds_count":0,"last_raw_version":3}`
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"one merchant and size (a key range)", []string{"--merchant=M001", "--size=1d"}, []string{m001}},
		{"one size, every merchant", []string{"--size=1d"}, []string{m001, m003}},
		{"from and to inside the day", []string{"--merchant=M001", "--size=1d", "--from=2024-12-21 12:00:00", "--to=2024-12-21T23:00:00+05:30"}, []string{m001}},
		{"from the next day", []string{"--merchant=M001", "--size=1d", "--from=2024-12-22"}, nil},
		{"to the day before", []string{"--size=1d", "--to=2024-12-20"}, nil},
		{"a merchant without a size, bounded", []string{"--merchant=M003", "--from=2024-12-21", "--to=2024-12-21"}, []string{
			m003,
			`{"merchant_id":"M003","window_size":"1w","window_start":"2024-12-16T00:00:00+05:30","window_end":"2024-12-23T00:00:00+05:30","total_sales":1500,"total_refunds":0,"net_sales":1500,"sales_count":1,"refunds_count":0,"last_raw_version":3}`}},
		{"at version 2", []string{"--merchant=M001", "--size=1d", "--version=2"}, []string{
			`{"merchant_id":"M001","window_size":"1d","window_start":"2024-12-21T00:00:00+05:30","window_end":"2024-12-22T00:00:00+05:30","total_sales":500,"total_refunds":0,"net_sales":500,"sales_count":1,"refunds_count":0,"last_raw_version":2}`}},
		{"a merchant with no windows", []string{"--merchant=M002"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []json.RawMessage
			decode(t, runOK(t, append([]string{dd, "windows", "--format=json"}, tc.args...)...), &got)
			if len(got) != len(tc.want) {
				t.Fatalf("%d rows, want %d: %s", len(got), len(tc.want), got)
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("row %d\n got %s\nwant %s", i, got[i], tc.want[i])
				}
			}
		})
	}
	csvOut := runOK(t, dd, "windows", "--size=1d", "--format=csv")
	if want := "merchant_id,window_size,window_start,window_end,total_sales,total_refunds,net_sales,sales_count,refunds_count,last_raw_version\n" +
		"M001,1d,2024-12-21T00:00:00+05:30,2024-12-22T00:00:00+05:30,500,-500,0,1,1,3\n"; !strings.HasPrefix(csvOut, want) {
		t.Errorf("csv:\n%s\nwant prefix\n%s", csvOut, want)
	}
	if out := runOK(t, dd, "windows", "--merchant=M003", "--size=1w"); !strings.Contains(out, "| M003        | 1w          | 2024-12-16T00:00:00+05:30 |") {
		t.Errorf("table:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--size=2d"}, "--size"},
		{[]string{"--from=soon"}, "--from"},
		{[]string{"--from=2024-12-22", "--to=2024-12-21"}, "before --from"},
		{[]string{"--version=1", "--as-of=2024-12-21T10:00:00Z"}, "--version and --as-of"},
	} {
		if _, errOut, code := run(t, nil, append([]string{dd, "windows"}, tc.args...)...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("windows %v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestAsOf reads tables as of their commit timestamps, between them and
// before the first one.
func TestAsOf(t *testing.T) {
	data := seeded(t)
	dd := "--data-dir=" + data
	ts := commitTimes(t, data, agg.TotalsTable)
	if len(ts) != 4 || !ts[1].Before(ts[2].Add(-time.Millisecond)) {
		t.Fatalf("commit times %v: want 4, at least 2ms apart", ts)
	}
	m001 := func(args ...string) string {
		t.Helper()
		var rows []map[string]any
		decode(t, runOK(t, append([]string{dd, "aggregates", "--format=json"}, args...)...), &rows)
		for _, r := range rows {
			if r["merchant_id"] == "M001" {
				return jsonText(r["total_sales"]) + " " + jsonText(r["total_refunds"])
			}
		}
		return "absent"
	}
	ist, _ := time.LoadLocation("Asia/Kolkata")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"at version 2's commit", []string{"--as-of=" + ts[2].Format(time.RFC3339Nano)}, "500 0"},
		{"just before version 2's commit", []string{"--as-of=" + ts[2].Add(-time.Millisecond).Format(time.RFC3339Nano)}, "0 0"},
		{"at version 3's commit", []string{"--as-of=" + ts[3].Format(time.RFC3339Nano)}, "500 -500"},
		{"long after", []string{"--as-of=2999-01-01T00:00:00Z"}, "500 -500"},
		{"at version 0", []string{"--as-of=" + ts[0].Format(time.RFC3339Nano)}, "absent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := m001(tc.args...); got != tc.want {
				t.Errorf("M001 %s, want %s", got, tc.want)
			}
		})
	}
	// A time without a zone is read in input.timezone.
	local := ts[2].In(ist).Format("2006-01-02 15:04:05.000")
	out, errOut, code := run(t, []string{"UPICDC_INPUT_TIMEZONE=Asia/Kolkata"}, dd, "aggregates", "--format=json", "--as-of="+local)
	if code != 0 || !strings.Contains(out, `{"merchant_id":"M001","total_sales":500,"total_refunds":0,`) {
		t.Errorf("--as-of %q in Asia/Kolkata: exit %d %s\n%s", local, code, errOut, out)
	}

	// Before the first commit: an error naming the first commit's time.
	before := ts[0].Add(-time.Second).Format(time.RFC3339Nano)
	for _, cmd := range [][]string{
		{"aggregates", "--as-of=" + before},
		{"windows", "--as-of=" + before},
		{"history", "--table=aggregated_upi_transactions", "--as-of=" + before},
	} {
		_, errOut, code := run(t, nil, append([]string{dd}, cmd...)...)
		if code != 1 || !strings.Contains(errOut, "before the table's first commit ("+ts[0].Format(time.RFC3339Nano)+")") {
			t.Errorf("%v: exit %d, %q; want 1 and the first commit's time %s", cmd, code, errOut, ts[0].Format(time.RFC3339Nano))
		}
	}
	if _, errOut, code := run(t, nil, dd, "aggregates", "--version=1", "--as-of="+before); code != 2 || !strings.Contains(errOut, "--version and --as-of") {
		t.Errorf("--version with --as-of: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, nil, dd, "aggregates", "--as-of=yesterday"); code != 2 || !strings.Contains(errOut, "--as-of") {
		t.Errorf("--as-of=yesterday: exit %d, %q", code, errOut)
	}

	// history --as-of lists the commits made by then.
	var h []map[string]any
	decode(t, runOK(t, dd, "history", "--table=aggregated_upi_transactions", "--format=json", "--as-of="+ts[2].Format(time.RFC3339Nano)), &h)
	if len(h) != 3 || h[2]["version"] != 2.0 {
		t.Errorf("history as of version 2's commit: %v", h)
	}
}

// TestChangesByTime selects change-feed versions by commit time.
func TestChangesByTime(t *testing.T) {
	data := seeded(t)
	dd := "--data-dir=" + data
	ts := commitTimes(t, data, "raw_upi_transactions_v1")
	versions := func(args ...string) []int64 {
		t.Helper()
		var rows []struct {
			V int64 `json:"_commit_version"`
		}
		decode(t, runOK(t, append([]string{dd, "changes", "--table=raw_upi_transactions_v1", "--format=json"}, args...)...), &rows)
		var out []int64
		for _, r := range rows {
			if len(out) == 0 || out[len(out)-1] != r.V {
				out = append(out, r.V)
			}
		}
		return out
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"from a commit's time", []string{"--from-time=" + ts[2].Format(time.RFC3339Nano)}, "[2,3]"},
		{"from between commits", []string{"--from-time=" + ts[1].Add(ms).Format(time.RFC3339Nano)}, "[2,3]"},
		{"to a commit's time", []string{"--from=0", "--to-time=" + ts[2].Format(time.RFC3339Nano)}, "[1,2]"},
		{"to between commits", []string{"--from-time=" + ts[2].Format(time.RFC3339Nano), "--to-time=" + ts[3].Add(-ms).Format(time.RFC3339Nano)}, "[2]"},
		{"an empty range", []string{"--from-time=" + ts[2].Add(ms).Format(time.RFC3339Nano), "--to-time=" + ts[3].Add(-ms).Format(time.RFC3339Nano)}, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := json.Marshal(versions(tc.args...))
			if tc.want == "[]" && string(got) == "null" {
				got = []byte("[]")
			}
			if string(got) != tc.want {
				t.Errorf("versions %s, want %s", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--from-time=" + ts[0].Add(-time.Second).Format(time.RFC3339Nano)}, 1, "before the table's first commit (" + ts[0].Format(time.RFC3339Nano) + ")"},
		{[]string{"--from-time=2999-01-01T00:00:00Z"}, 1, "no commit at or after it (the latest, version 3"},
		{[]string{"--from=1", "--from-time=2024-12-21T00:00:00Z"}, 2, "--from and --from-time"},
		{[]string{"--from=1", "--to=2", "--to-time=2024-12-21T00:00:00Z"}, 2, "--to and --to-time"},
		{nil, 2, "--from (a version) or --from-time is required"},
	} {
		if _, errOut, code := run(t, nil, append([]string{dd, "changes"}, tc.args...)...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("changes %v: exit %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func TestEveryTableHasHistoryAndChanges(t *testing.T) {
	data := seeded(t)
	dd := "--data-dir=" + data
	for _, table := range []string{"raw_upi_transactions_v1", "aggregated_upi_transactions", "merchant_window_aggregates"} {
		var h []map[string]any
		decode(t, runOK(t, dd, "history", "--table="+table, "--format=json"), &h)
		if len(h) != 4 || h[0]["operation"] != "CREATE TABLE" {
			t.Errorf("%s history: %v", table, h)
		}
		var c []map[string]any
		decode(t, runOK(t, dd, "changes", "--table="+table, "--from=0", "--format=json"), &c)
		if len(c) == 0 || c[0]["_change_type"] != "insert" {
			t.Errorf("%s changes: %v", table, c)
		}
	}
	_, errOut, code := run(t, nil, dd, "history", "--table=nope")
	if code != 2 || !strings.Contains(errOut, `unknown table "nope" (tables: raw_upi_transactions_v1,aggregated_upi_transactions,merchant_window_aggregates,merchant_alerts,pipeline_audit)`) {
		t.Errorf("history --table=nope: exit %d, %q", code, errOut)
	}
}

func TestReprocess(t *testing.T) {
	data := seeded(t)
	dd := "--data-dir=" + data
	var res []map[string]any
	decode(t, runOK(t, dd, "reprocess", "--table=merchant_window_aggregates", "--format=json"), &res)
	if len(res) != 1 || res[0]["table"] != "merchant_window_aggregates" || res[0]["version"] != 4.0 || res[0]["raw_version"] != 3.0 ||
		res[0]["inserted"] != 0.0 || res[0]["updated"] != 0.0 || res[0]["deleted"] != 0.0 {
		t.Errorf("reprocess of a correct table: %v", res)
	}
	var h []map[string]any
	decode(t, runOK(t, dd, "history", "--table=merchant_window_aggregates", "--format=json"), &h)
	if last := h[len(h)-1]; last["version"] != 4.0 || last["operation"] != "REPROCESS" {
		t.Errorf("last commit %v, want version 4, REPROCESS", last)
	}
	for _, tc := range []struct{ args, want string }{
		{"--table=raw_upi_transactions_v1", "aggregated_upi_transactions, merchant_window_aggregates"},
		{"", "--table is required"},
	} {
		args := []string{dd, "reprocess"}
		if tc.args != "" {
			args = append(args, tc.args)
		}
		if _, errOut, code := run(t, nil, args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("reprocess %s: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestReprocessRepairsATable damages the totals behind the processor's
// back; reprocess commits the recomputed rows and reconcile agrees again.
func TestReprocessRepairsATable(t *testing.T) {
	data := t.TempDir()
	dd := "--data-dir=" + data
	runOK(t, dd, "ingest", "../../examples/batches/batch1.csv")
	runOK(t, dd, "process")
	rogueWrite(t, data)
	runOK(t, dd, "ingest", "../../examples/batches/batch2.csv")
	runOK(t, dd, "process")
	if _, _, code := run(t, nil, dd, "reconcile"); code != 1 {
		t.Fatalf("reconcile after the rogue write: exit %d, want 1", code)
	}
	var res []map[string]any
	decode(t, runOK(t, dd, "reprocess", "--table=aggregated_upi_transactions", "--format=json"), &res)
	if len(res) != 1 || res[0]["updated"] != 1.0 || res[0]["inserted"] != 0.0 || res[0]["deleted"] != 0.0 {
		t.Errorf("reprocess: %v, want one row updated", res)
	}
	if out := runOK(t, dd, "reconcile"); !strings.Contains(out, "0 difference(s)") {
		t.Errorf("reconcile after reprocess: %s", out)
	}
}

func TestDemoPrintsTheDailyWindows(t *testing.T) {
	data := filepath.Join(t.TempDir(), "demo")
	out := runOK(t, "--data-dir="+data, "demo")
	for _, want := range []string{
		"Daily windows (1d, Asia/Kolkata) after batch 3: merchant_window_aggregates version 3",
		"| M001        | 1d          | 2024-12-21T00:00:00+05:30 | 2024-12-22T00:00:00+05:30 | 500         | -500          | 0         |",
		"| M003        | 1d          | 2024-12-21T00:00:00+05:30 | 2024-12-22T00:00:00+05:30 | 1500        | 0             | 1500      |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The demo's store holds exactly those daily windows.
	var rows []map[string]any
	decode(t, runOK(t, "--data-dir="+data, "windows", "--size=1d", "--format=json"), &rows)
	got := ""
	for _, r := range rows {
		got += r["merchant_id"].(string) + " " + r["window_start"].(string) + " " + jsonText(r["total_sales"]) + " " + jsonText(r["total_refunds"]) + " " + jsonText(r["net_sales"]) + "\n"
	}
	if want := "M001 2024-12-21T00:00:00+05:30 500 -500 0\nM003 2024-12-21T00:00:00+05:30 1500 0 1500\n"; got != want {
		t.Errorf("daily windows:\n%s\nwant\n%s", got, want)
	}
}

// TestOneEncoding reads the same rows through the CLI's --format json and
// the HTTP API: every object is the same bytes.
func TestOneEncoding(t *testing.T) {
	data := seeded(t)
	defs, err := agg.Defs(agg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(data, store.Options{ReadOnly: true, Tables: defs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(httpapi.New(httpapi.Options{DB: db}))
	defer srv.Close()
	api := func(path, field string) []json.RawMessage {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var env map[string]json.RawMessage
		decode(t, string(body), &env)
		var out []json.RawMessage
		decode(t, string(env[field]), &out)
		return out
	}
	for _, tc := range []struct {
		name        string
		cli         []string
		path, field string
	}{
		{"aggregates", []string{"aggregates"}, "/api/v1/merchants", "merchants"},
		{"aggregates at a version", []string{"aggregates", "--version=2"}, "/api/v1/merchants?version=2", "merchants"},
		{"windows", []string{"windows", "--merchant=M003"}, "/api/v1/merchants/M003/windows", "windows"},
		{"raw history", []string{"history"}, "/api/v1/tables/raw_upi_transactions_v1/history", "commits"},
		{"windows history", []string{"history", "--table=merchant_window_aggregates"}, "/api/v1/tables/merchant_window_aggregates/history", "commits"},
		{"raw changes", []string{"changes", "--from=0"}, "/api/v1/tables/raw_upi_transactions_v1/changes?from=0", "changes"},
		{"totals changes", []string{"changes", "--table=aggregated_upi_transactions", "--from=0"}, "/api/v1/tables/aggregated_upi_transactions/changes?from=0", "changes"},
		{"a transaction", []string{"txn", "T001"}, "/api/v1/transactions/T001", "versions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cli []json.RawMessage
			decode(t, runOK(t, append([]string{"--data-dir=" + data, "--format=json"}, tc.cli...)...), &cli)
			http := api(tc.path, tc.field)
			if len(cli) == 0 || len(cli) != len(http) {
				t.Fatalf("CLI %d rows, HTTP %d", len(cli), len(http))
			}
			for i := range cli {
				if string(cli[i]) != string(http[i]) {
					t.Errorf("row %d\n CLI  %s\n HTTP %s", i, cli[i], http[i])
				}
			}
		})
	}
	// One merchant's object is the row of the list.
	resp, err := http.Get(srv.URL + "/api/v1/merchants/M001")
	if err != nil {
		t.Fatal(err)
	}
	one, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cli := runOK(t, "--data-dir="+data, "--format=json", "aggregates"); !strings.Contains(cli, strings.TrimSpace(string(one))) {
		t.Errorf("/api/v1/merchants/M001 %s is not a row of\n%s", one, cli)
	}
}

// rogueWrite changes M002's failed_count behind the processor's back.
func rogueWrite(t *testing.T, data string) {
	t.Helper()
	db, err := agg.Open(data, agg.Config{}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := corruptM002(db); err != nil {
		t.Fatal(err)
	}
}
