//go:build browser

// The dashboard in a real browser: headless Chromium driven by chromedp
// against the real binary. It needs Chromium (Debian: apt-get install
// chromium; CHROMIUM_BIN names another binary) and runs from .ci/run:
//
//	go test -tags browser -run TestDashboardBrowser -artifacts -outputdir OUT ./cmd/upicdc
//
// The screenshots are written to the test's artifact directory.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium tab and what its console said.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := os.Getenv("CHROMIUM_BIN")
	if exe == "" {
		exe = "/usr/bin/chromium"
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("no Chromium at %s (Debian: apt-get install chromium; or set CHROMIUM_BIN): %v", exe, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, dir: t.ArtifactDir()}
	b.do(chromedp.EmulateViewport(1280, 900)) // starts the browser
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is truthy (on every DOM change
// and animation frame; a bounded deadline only against a hang).
func (b *browser) waitJS(what, js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		html := eval[string](b, `document.querySelector("main").innerText`)
		b.t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, js, err, html)
	}
}

// screenshot saves the page as a PNG in the artifact directory.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}

// consoleErrors returns the console's errors and exceptions. A 404 of
// /api/v1/alerts is expected while the daemon has no alerts (the page then
// hides the section), and a refused connection is the event stream
// reconnecting across a restart.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.Type != chromedp.ConsoleError && !m.IsException() {
			continue
		}
		if m.Source == "network" && (strings.HasSuffix(m.URL, "/api/v1/alerts") && strings.Contains(m.Text, "404") ||
			strings.Contains(m.Text, "ERR_CONNECTION_REFUSED")) {
			continue
		}
		out = append(out, m.String()+" "+m.URL)
	}
	return out
}

// merchantCell is JavaScript reading one cell of a merchant's row.
func merchantCell(id, col string) string {
	return fmt.Sprintf(`(document.querySelector('#merchants tr[data-merchant=%q] td.%s') || {}).textContent`, id, col)
}

func TestDashboardBrowser(t *testing.T) {
	data := t.TempDir()
	inbox := filepath.Join(data, "inbox")
	p := startServe(t, data, nil)
	p.eventually("ready", func() bool { return p.get("/readyz", nil) == 200 })
	for _, name := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		body, err := os.ReadFile("../../examples/batches/" + name)
		if err != nil {
			t.Fatal(err)
		}
		dropFile(t, inbox, name, body)
	}
	p.eventually("the seed's three batches", func() bool {
		return p.merchantsTable() == "M001 500 -500 0\nM002 0 0 0\nM003 1500 0 1500\nM004 0 0 0\n"
	})

	b := newBrowser(t)
	base := "http://" + p.addr + "/"
	b.do(chromedp.Navigate(base))
	b.waitJS("the merchants table", merchantCell("M003", "net_sales")+` === "₹1,500.00"`)
	if got := eval[string](b, merchantCell("M001", "net_sales")); got != "₹0.00" {
		t.Errorf("M001 net sales %q, want ₹0.00", got)
	}
	if got := eval[string](b, merchantCell("M001", "total_refunds")); got != "-₹500.00" {
		t.Errorf("M001 refunds %q, want -₹500.00", got)
	}
	b.waitJS("the stream to show caught up", `document.querySelector('#lag-versions').textContent === "caught up"`)
	b.waitJS("the event stream", `document.querySelector('#live').textContent === "live"`)
	if eval[bool](b, `!document.querySelector('#alerts').hidden`) && p.get("/api/v1/alerts", nil) == 404 {
		t.Error("the alerts section shows although /api/v1/alerts is 404")
	}
	b.screenshot("1-merchants")

	t.Run("money", func(t *testing.T) {
		for in, want := range map[string]string{
			"0": "₹0.00", "500": "₹500.00", "-500": "-₹500.00", "500.5": "₹500.50", "999.99": "₹999.99",
			"1000": "₹1,000.00", "100000": "₹1,00,000.00", "12345678.05": "₹1,23,45,678.05",
			// Beyond a float's 2^53: exact because it is never a float.
			"92233720368547758.07": "₹92,23,37,20,36,85,47,758.07",
		} {
			if got := eval[string](b, fmt.Sprintf(`upicdc.money(upicdc.exactJSON('{"v": %s}').v)`, in)); got != want {
				t.Errorf("money(%s) = %q, want %q", in, got, want)
			}
		}
	})

	// A merchant's page: totals, a chart per window size, transactions.
	b.do(chromedp.Navigate(base + "#/merchant/M003"))
	b.waitJS("M003's daily chart", `document.querySelector('#chart-1d canvas') && document.querySelector('#chart-1d').dataset.points === "1"`)
	b.waitJS("M003's weekly chart", `document.querySelector('#chart-1w canvas') !== null`)
	if got := eval[string](b, `document.querySelector('#merchant-totals .net_sales').textContent`); got != "₹1,500.00" {
		t.Errorf("M003 net sales card %q, want ₹1,500.00", got)
	}
	if got := eval[string](b, `[...document.querySelectorAll('#transactions tbody tr')].map(r => r.dataset.version).join(",")`); got != "3,1" {
		t.Errorf("M003's transaction versions %q, want 3,1 (completed at v3, initiated at v1)", got)
	}
	b.screenshot("2-merchant-M003")

	// Live: a fourth file changes the list without a reload, within a
	// second of the commit that changes it.
	b.do(chromedp.Navigate(base))
	b.waitJS("the merchants table", merchantCell("M003", "net_sales")+` === "₹1,500.00"`)
	b.waitJS("the event stream", `document.querySelector('#live').textContent === "live"`)
	eval[bool](b, `window.notReloaded = true`)
	dropFile(t, inbox, "batch4.csv", []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n"+
		"T005,upi5@bank,M003,2000.0,2024-12-21 11:00:00,completed\n"))
	b.waitJS("M003 after the fourth file", merchantCell("M003", "net_sales")+` === "₹3,500.00"`)
	if !eval[bool](b, `window.notReloaded === true`) {
		t.Error("the page reloaded")
	}
	// The redraw that a commit of the merchant totals caused.
	b.waitJS("the live update's timing", `upicdc.state.lastUpdate && upicdc.state.lastUpdate.tables.includes("aggregated_upi_transactions")`)
	lag := eval[float64](b, `upicdc.state.lastUpdate.renderedAt - upicdc.state.lastUpdate.eventTime`)
	t.Logf("commit to redraw: %.0f ms", lag)
	if lag > 1000 {
		t.Errorf("the page changed %.0f ms after the commit, want within a second", lag)
	}
	b.screenshot("3-after-fourth-file")

	t.Run("phone width", func(t *testing.T) {
		b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		b.waitJS("the layout at 390px", `window.innerWidth === 390`)
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %d px wide at a 390 px viewport (scrolls sideways)", w)
		}
		if !eval[bool](b, `(() => { const r = document.querySelector('#merchants tr[data-merchant="M003"] td.net_sales').getBoundingClientRect(); return r.width > 0 && r.right <= 390; })()`) {
			t.Error("M003's net sales is not visible at phone width")
		}
		b.screenshot("4-phone")
		b.do(chromedp.Navigate(base + "#/merchant/M003"))
		b.waitJS("M003's chart at phone width", `document.querySelector('#chart-1d canvas') !== null`)
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the merchant page is %d px wide at a 390 px viewport", w)
		}
		b.screenshot("5-phone-merchant")
		b.do(chromedp.EmulateViewport(1280, 900))
	})

	// The event stream reconnects after a restart of the daemon (on the
	// same address) and the page follows the new daemon's commits. (Not a
	// subtest: the new daemon must outlive it.)
	{
		b.do(chromedp.Navigate(base))
		b.waitJS("the event stream", `document.querySelector('#live').textContent === "live"`)
		if code := p.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, p.log())
		}
		b.waitJS("the page to notice", `document.querySelector('#live').textContent !== "live"`)
		p2 := startServe(t, data, []string{"UPICDC_HTTP_LISTEN=" + p.addr})
		p = p2
		b.waitJS("the stream to come back", `document.querySelector('#live').textContent === "live"`)
		dropFile(t, inbox, "batch5.csv", []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n"+
			"T006,upi6@bank,M002,250.25,2024-12-21 12:00:00,completed\n"))
		b.waitJS("M002 after the restart", merchantCell("M002", "net_sales")+` === "₹250.25"`)
	}

	// Once the daemon serves /api/v1/alerts (the alerts feature), the page
	// shows the firing ones, newest first, and a merchant's own. Here the
	// endpoint answers from a stub in the page, in the alerts API's shape.
	t.Run("alerts", func(t *testing.T) {
		eval[bool](b, `(() => {
			const real = window.fetch;
			window.fetch = (url, opts) => String(url).startsWith("/api/v1/alerts")
				? Promise.resolve(new Response(JSON.stringify({table: "merchant_alerts", version: 2, state: "all", alerts: [
					{rule: "high_refund_ratio", merchant_id: "M001", window_start: "2024-12-21T00:00:00+05:30", window_size: "1d", severity: "warning", state: "firing", fired_at: "2024-12-21T16:00:00+05:30", resolved_at: null, value: "{}", raw_version: 3},
					{rule: "big_sale", merchant_id: "M003", window_start: "2024-12-21T00:00:00+05:30", window_size: "1d", severity: "info", state: "firing", fired_at: "2024-12-21T17:00:00+05:30", resolved_at: null, value: "{}", raw_version: 4},
					{rule: "big_sale", merchant_id: "M002", window_start: "2024-12-21T00:00:00+05:30", window_size: "1d", severity: "info", state: "resolved", fired_at: "2024-12-21T15:00:00+05:30", resolved_at: "2024-12-21T15:30:00+05:30", value: "{}", raw_version: 2},
				]}), {status: 200, headers: {"Content-Type": "application/json"}}))
				: real(url, opts);
			upicdc.state.alerts = null;
			upicdc.reload();
			return true;
		})()`)
		b.waitJS("the alerts section", `!document.querySelector('#alerts').hidden && document.querySelector('#alerts-count').textContent === "2"`)
		rows := eval[string](b, `[...document.querySelectorAll('#alerts-table tbody tr')].map(r => r.textContent.includes("M003") ? "M003" : r.textContent.includes("M001") ? "M001" : "?").join(",")`)
		if rows != "M003,M001" {
			t.Errorf("firing alerts %q, want M003,M001 (newest first, the resolved one left out)", rows)
		}
		b.screenshot("7-alerts")
		b.do(chromedp.Evaluate[chromedp.Void](`location.hash = "#/merchant/M001"`))
		b.waitJS("M001's alerts", `!document.querySelector('#merchant-alerts').hidden && document.querySelector('#merchant-alerts tbody').textContent.includes("high_refund_ratio")`)
	})

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}

	// 10,000 merchants: paged on the server, so the page stays small.
	t.Run("10000 merchants", func(t *testing.T) {
		var csv strings.Builder
		csv.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
		for i := range 10000 {
			fmt.Fprintf(&csv, "X%05d,u%d@bank,N%05d,%d.%02d,2024-12-22 10:00:00,completed\n", i, i, i, 100+i, i%100)
		}
		dropFile(t, inbox, "many.csv", []byte(csv.String()))
		p.eventually("10,000 more merchants", func() bool {
			var page struct{ Total int }
			return p.get("/api/v1/merchants?q=N", &page) == 200 && page.Total == 10000
		})
		b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
			return err
		}), chromedp.Navigate("about:blank"), chromedp.Navigate(base))
		b.waitJS("the first page of 10,004", `document.querySelector('#range').textContent === "1–50 of 10,004"`)
		b.waitJS("the first render", `upicdc.state.firstRenderMs > 0`)
		m := eval[map[string]float64](b, `(() => {
			const first = upicdc.state.firstRenderMs;
			const nav = performance.getEntriesByType("navigation")[0];
			let bytes = nav.transferSize, decoded = nav.decodedBodySize, n = 1;
			for (const r of performance.getEntriesByType("resource")) {
				if (r.startTime > first) continue;
				bytes += r.transferSize; decoded += r.decodedBodySize; n++;
			}
			return {firstRenderMs: first, bytes, decoded, requests: n};
		})()`)
		t.Logf("10,004 merchants: first render %.0f ms after navigation start; %d requests, %.0f bytes transferred (%.0f decoded)",
			m["firstRenderMs"], int(m["requests"]), m["bytes"], m["decoded"])
		report := fmt.Sprintf("merchants: 10004\nfirst_render_ms: %.0f\nrequests: %d\ntransfer_bytes: %.0f\ndecoded_bytes: %.0f\n",
			m["firstRenderMs"], int(m["requests"]), m["bytes"], m["decoded"])
		if err := os.WriteFile(filepath.Join(b.dir, "first-load.txt"), []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
		// The top merchant by net sales, then a search, then a sort.
		b.waitJS("the top merchant", `document.querySelector('#merchants tbody tr').dataset.merchant === "N09999"`)
		if got := eval[string](b, merchantCell("N09999", "net_sales")); got != "₹10,099.99" {
			t.Errorf("N09999 net sales %q, want ₹10,099.99", got)
		}
		b.do(chromedp.SendKeys(`#search`, "n0420"))
		b.waitJS("the search", `document.querySelector('#range').textContent === "1–10 of 10"`)
		b.do(chromedp.Click(`#merchants th[data-sort="merchant_id"]`))
		b.waitJS("sorted by id", `document.querySelector('#merchants tbody tr').dataset.merchant === "N04200"`)
		b.screenshot("6-many-merchants")
	})
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
