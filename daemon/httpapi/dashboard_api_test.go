package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/daemon/httpapi"
)

// TestDashboardEndpoints covers the endpoints the dashboard reads besides
// the ones TestEndpoints covers: a sorted, searched, paged merchants list,
// a merchant's recent transactions and the tables with their zones.
func TestDashboardEndpoints(t *testing.T) {
	srv := seeded(t)
	tests := []struct {
		name, path string
		code       int
		contains   []string
	}{
		{"merchants by net sales", "/api/v1/merchants?sort=net_sales&order=desc&limit=2", 200, []string{
			`"version":3,"total":4,"offset":0,"sort":"net_sales","order":"desc","merchants":[{"merchant_id":"M003","total_sales":1500,`,
			`{"merchant_id":"M001",`}},
		{"merchants by net sales, second page", "/api/v1/merchants?sort=net_sales&order=desc&limit=2&offset=2", 200, []string{
			`"offset":2,`, `"merchants":[{"merchant_id":"M002",`, `{"merchant_id":"M004",`}},
		{"merchants by id descending", "/api/v1/merchants?sort=merchant_id&order=desc&limit=1", 200, []string{`"merchants":[{"merchant_id":"M004",`}},
		{"merchants searched by id", "/api/v1/merchants?q=m00&sort=merchant_id", 200, []string{`"total":4,`}},
		{"merchants searched by a part of the id", "/api/v1/merchants?q=03", 200, []string{`"total":1,`, `"merchants":[{"merchant_id":"M003",`}},
		{"merchants searched, none", "/api/v1/merchants?q=zz", 200, []string{`"total":0,`, `"merchants":[]`}},
		{"merchants offset past the end", "/api/v1/merchants?offset=10", 200, []string{`"total":4,"offset":10,`, `"merchants":[]`}},
		{"merchants sorted by an unknown column", "/api/v1/merchants?sort=colour", 400, []string{`"parameter":"sort"`, "net_sales"}},
		{"merchants with a bad order", "/api/v1/merchants?sort=net_sales&order=up", 400, []string{`"parameter":"order"`}},
		{"merchants page and after together", "/api/v1/merchants?offset=1&after=M001", 400, []string{`"parameter":"after"`}},
		{"merchants page as of a version", "/api/v1/merchants?sort=net_sales&order=desc&version=2", 200, []string{`"version":2,`, `"merchants":[{"merchant_id":"M001","total_sales":500,`}},

		{"a merchant's transactions", "/api/v1/merchants/M001/transactions", 200, []string{
			`"merchant_id":"M001","version":3,"scanned_from":1,"complete":true,"truncated":false,"transactions":[` +
				`{"transaction_id":"T001","upi_id":"upi1@bank","merchant_id":"M001","transaction_amount":500,"transaction_time":"2024-12-21T10:30:00Z","transaction_status":"refunded","_change_type":"update_postimage","_commit_version":3,`,
			`"transaction_status":"completed","_change_type":"update_postimage","_commit_version":2,`,
			`"transaction_status":"initiated","_change_type":"insert","_commit_version":1,`}},
		{"a merchant's newest transaction", "/api/v1/merchants/M001/transactions?limit=1", 200, []string{`"truncated":true,`, `"_commit_version":3,`}},
		{"transactions of an unknown merchant", "/api/v1/merchants/M999/transactions", 404, []string{`merchant \"M999\": not found`}},
		{"transactions with a bad limit", "/api/v1/merchants/M001/transactions?limit=0", 400, []string{`"parameter":"limit"`}},

		{"tables", "/api/v1/tables", 200, []string{
			`{"name":"raw_upi_transactions_v1",`, `"version":3`,
			`{"name":"window_start","type":"timestamp","zone":"Asia/Kolkata"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := fetch(t, srv, "GET", tc.path)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			for _, want := range tc.contains {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %s\n%s", want, body)
				}
			}
		})
	}
	// The transactions are newest first and never an update's preimage.
	_, body := fetch(t, srv, "GET", "/api/v1/merchants/M001/transactions")
	if strings.Contains(body, "update_preimage") {
		t.Errorf("preimages listed: %s", body)
	}
	if i, j := strings.Index(body, `"_commit_version":3`), strings.Index(body, `"_commit_version":1`); i < 0 || j < i {
		t.Errorf("not newest first: %s", body)
	}
}

// TestDashboardPage checks the page and its embedded assets are served,
// compressed for clients that take gzip, and revalidated by ETag.
func TestDashboardPage(t *testing.T) {
	srv := seeded(t)
	get := func(path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		// A Transport that does not add Accept-Encoding itself.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	tests := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="assets/app.js"`},
		{"/assets/app.js", "text/javascript; charset=utf-8", "EventSource"},
		{"/assets/app.css", "text/css; charset=utf-8", "body"},
		{"/assets/vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8", "uPlot"},
		{"/assets/vendor/uplot/LICENSE", "text/plain; charset=utf-8", "MIT"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(tc.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if r := get(tc.path, map[string]string{"If-None-Match": etag}); r.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation: %d, want 304", r.StatusCode)
			}
			gz := get(tc.path, map[string]string{"Accept-Encoding": "gzip, br"})
			if gz.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", gz.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(gz.Body)
			if err != nil {
				t.Fatal(err)
			}
			unzipped, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(unzipped, body) {
				t.Errorf("gzip body differs (err %v)", err)
			}
		})
	}
	if r := get("/assets/nothing.js", nil); r.StatusCode != 404 {
		t.Errorf("missing asset: %d", r.StatusCode)
	}
	if r := get("/nothing", nil); r.StatusCode != 404 {
		t.Errorf("unknown path: %d", r.StatusCode)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

// readEvent reads the next event (skipping comments and retry lines).
func readEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev.name != "":
			return ev
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestEvents(t *testing.T) {
	feed := make(chan httpapi.Event, 4)
	cancelled := make(chan struct{})
	db := seededDB(t)
	srv := httptest.NewUnstartedServer(httpapi.New(httpapi.Options{
		DB: db,
		Events: func() (<-chan httpapi.Event, func()) {
			return feed, func() { close(cancelled) }
		},
	}))
	// The daemon's server settings: the stream must outlive WriteTimeout.
	srv.Config = httpapi.NewServer(srv.Config.Handler, discard())
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	hello := readEvent(t, br)
	if hello.name != "hello" || !strings.Contains(hello.data, `"raw_upi_transactions_v1":3`) {
		t.Fatalf("first event %+v, want hello with the latest versions", hello)
	}
	// Past the server's WriteTimeout, events still arrive.
	time.Sleep(300 * time.Millisecond)
	at := time.Date(2024, 12, 21, 12, 0, 0, 0, time.UTC)
	for v := int64(4); v <= 5; v++ {
		feed <- httpapi.Event{Table: "raw_upi_transactions_v1", Version: v, Time: at, Operation: "MERGE"}
		ev := readEvent(t, br)
		want := fmt.Sprintf(`{"table":"raw_upi_transactions_v1","version":%d,"time":"2024-12-21T12:00:00Z","operation":"MERGE"}`, v)
		if ev.name != "commit" || ev.data != want {
			t.Errorf("event %+v, want commit %s", ev, want)
		}
		var e httpapi.Event
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil || e.Version != v {
			t.Errorf("event data %s: %v", ev.data, err)
		}
	}
	// The client going away unsubscribes.
	cancel()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription was not cancelled after the client left")
	}
}

func TestEventsClosedFeed(t *testing.T) {
	feed := make(chan httpapi.Event)
	close(feed) // the daemon is shutting down
	srv := httptest.NewServer(httpapi.New(httpapi.Options{
		DB:     seededDB(t),
		Events: func() (<-chan httpapi.Event, func()) { return feed, func() {} },
	}))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // ends: the handler returned
	if err != nil || !strings.Contains(string(body), "event: hello") {
		t.Errorf("body %q, err %v", body, err)
	}
	noEvents := httptest.NewServer(httpapi.New(httpapi.Options{DB: seededDB(t)}))
	t.Cleanup(noEvents.Close)
	if code, _ := fetch(t, noEvents, "GET", "/api/v1/events"); code != 404 {
		t.Errorf("without a feed: %d, want 404", code)
	}
}
