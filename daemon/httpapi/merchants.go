package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

type merchantsJSON struct {
	Table     string          `json:"table"`
	Version   int64           `json:"version"`
	Merchants []render.Object `json:"merchants"`
	Truncated bool            `json:"truncated"`
	// NextAfter is the after= that continues a truncated list.
	NextAfter *string `json:"next_after,omitempty"`
}

// merchants lists aggregated_upi_transactions (now, at ?version= or
// ?as_of=), in merchant_id order, at most ?limit= rows (default and most:
// MaxLimit) after ?after=: a key-range read from after on.
func (s *server) merchants(w http.ResponseWriter, r *http.Request) {
	if isPageRequest(r) {
		s.merchantsPage(w, r) // sorted, searched or offset pages
		return
	}
	if err := checkQuery(r, "version", "as_of", "limit", "after"); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", MaxLimit, 1, MaxLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, err := s.readVersion(r, agg.TotalsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sch, err := s.schema(agg.TotalsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after := r.URL.Query().Get("after")
	var kr store.KeyRange
	if after != "" {
		from := store.S(after)
		kr.From = &from
	}
	out := merchantsJSON{Table: agg.TotalsTable, Merchants: []render.Object{}}
	names := render.Names(sch)
	out.Version, err = s.db.Scan(r.Context(), agg.TotalsTable, version, kr, func(row store.Row) error {
		if row[0].Str == after {
			return nil
		}
		if int64(len(out.Merchants)) == limit {
			out.Truncated = true
			last := lastKey(out.Merchants)
			out.NextAfter = &last
			return errFull
		}
		out.Merchants = append(out.Merchants, render.Object{Columns: names, Cells: render.Row(sch, row)})
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// lastKey is the merchant_id of the last object of a page.
func lastKey(objs []render.Object) string {
	c, _ := objs[len(objs)-1].Get("merchant_id")
	return c.Text
}

// merchant is one merchant's row of aggregated_upi_transactions (now, at
// ?version= or ?as_of=).
func (s *server) merchant(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "version", "as_of"); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := idParam(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, err := s.readVersion(r, agg.TotalsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sch, err := s.schema(agg.TotalsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	row, found, err := s.db.Get(agg.TotalsTable, version, store.Row{store.S(id)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found {
		s.fail(w, r, fmt.Errorf("merchant %q: %w", id, store.ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, render.RowObject(sch, row))
}

// windowsTable describes merchant_window_aggregates for a request: its
// schema, and where window_start sits and which zone it is in.
type windowsTable struct {
	schema           *store.Schema
	size, start, end int
	net, merchant    int
	zone             *time.Location
}

func (s *server) windowsTable() (windowsTable, error) {
	sch, err := s.schema(agg.WindowsTable)
	if err != nil {
		return windowsTable{}, err
	}
	wt := windowsTable{schema: sch, merchant: sch.Index("merchant_id"), size: sch.Index("window_size"),
		start: sch.Index("window_start"), end: sch.Index("window_end"), net: sch.Index("net_sales")}
	if wt.merchant < 0 || wt.size < 0 || wt.start < 0 || wt.end < 0 || wt.net < 0 {
		return wt, fmt.Errorf("%s: unexpected columns %v", agg.WindowsTable, render.Names(sch))
	}
	wt.zone = sch.Columns[wt.start].Zone
	if wt.zone == nil {
		wt.zone = time.UTC
	}
	return wt, nil
}

// sizeParam reads ?size=, one of the window sizes.
func sizeParam(r *http.Request, required bool) (string, error) {
	v, ok, err := oneParam(r, "size")
	if err != nil {
		return "", err
	}
	if !ok {
		if required {
			return "", &paramError{"size", "required (" + strings.Join(agg.WindowSizes(), ", ") + ")"}
		}
		return "", nil
	}
	if !slices.Contains(agg.WindowSizes(), v) {
		return "", &paramError{"size", fmt.Sprintf("%q is not one of %s", v, strings.Join(agg.WindowSizes(), ", "))}
	}
	return v, nil
}

type merchantWindowsJSON struct {
	Table      string          `json:"table"`
	Version    int64           `json:"version"`
	MerchantID string          `json:"merchant_id"`
	Windows    []render.Object `json:"windows"`
}

// merchantWindows lists one merchant's windows in key order (size, then
// start), optionally of one ?size= and overlapping ?from=..?to= (times
// without a zone are read in the windows' zone). With a size it is a
// key-range read of exactly those windows.
func (s *server) merchantWindows(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "size", "from", "to", "version", "as_of"); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := idParam(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	size, err := sizeParam(r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	wt, err := s.windowsTable()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, hasFrom, err := timeParam(r, "from", wt.zone)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, hasTo, err := timeParam(r, "to", wt.zone)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if hasFrom && hasTo && to.Before(from) {
		s.fail(w, r, &paramError{"to", "is before from"})
		return
	}
	version, err := s.readVersion(r, agg.WindowsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	kr := store.KeyRange{Prefix: store.Row{store.S(id)}}
	if size != "" {
		kr.Prefix = append(kr.Prefix, store.S(size))
		if hasFrom {
			start, _ := agg.Window(size, from.UnixMicro(), wt.zone)
			v := store.T(start)
			kr.From = &v
		}
		if hasTo {
			v := store.T(to)
			kr.To = &v
		}
	}
	out := merchantWindowsJSON{Table: agg.WindowsTable, MerchantID: id, Windows: []render.Object{}}
	names := render.Names(wt.schema)
	out.Version, err = s.db.Scan(r.Context(), agg.WindowsTable, version, kr, func(row store.Row) error {
		// Without a size the range is the merchant's; bound each window.
		if (hasFrom && row[wt.end].Int <= from.UnixMicro()) || (hasTo && row[wt.start].Int > to.UnixMicro()) {
			return nil
		}
		out.Windows = append(out.Windows, render.Object{Columns: names, Cells: render.Row(wt.schema, row)})
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type windowJSON struct {
	Table       string          `json:"table"`
	Version     int64           `json:"version"`
	WindowSize  string          `json:"window_size"`
	WindowStart render.Cell     `json:"window_start"`
	WindowEnd   render.Cell     `json:"window_end"`
	Merchants   []render.Object `json:"merchants"`
	Truncated   bool            `json:"truncated"`
	// NextAfter is the after= that continues a truncated list (pass the
	// same version= so the pages belong together).
	NextAfter *string `json:"next_after,omitempty"`
}

// windows lists the merchants of one window: ?size= and the window that
// contains ?start=, by net_sales descending (then merchant_id), at most
// ?limit= rows after the merchant ?after=. The table is keyed by merchant
// first, so this reads every window row and keeps those of the window.
func (s *server) windows(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "size", "start", "limit", "after", "version", "as_of"); err != nil {
		s.fail(w, r, err)
		return
	}
	size, err := sizeParam(r, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	wt, err := s.windowsTable()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	at, ok, err := timeParam(r, "start", wt.zone)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		s.fail(w, r, &paramError{"start", "required (a time in the window, e.g. 2024-12-21)"})
		return
	}
	limit, err := intParam(r, "limit", MaxLimit, 1, MaxLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, err := s.readVersion(r, agg.WindowsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start, end := agg.Window(size, at.UnixMicro(), wt.zone)
	var rows []store.Row
	version, err = s.db.Scan(r.Context(), agg.WindowsTable, version, store.KeyRange{}, func(row store.Row) error {
		if row[wt.size].Str == size && row[wt.start].Int == start.UnixMicro() {
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.SortFunc(rows, func(a, b store.Row) int {
		return cmp.Or(cmp.Compare(b[wt.net].Int, a[wt.net].Int), strings.Compare(a[wt.merchant].Str, b[wt.merchant].Str))
	})
	if after := r.URL.Query().Get("after"); after != "" {
		i := slices.IndexFunc(rows, func(row store.Row) bool { return row[wt.merchant].Str == after })
		if i < 0 {
			s.fail(w, r, &paramError{"after", fmt.Sprintf("merchant %q has no row in this window at version %d", after, version)})
			return
		}
		rows = rows[i+1:]
	}
	out := windowJSON{Table: agg.WindowsTable, Version: version, WindowSize: size,
		WindowStart: render.Time(start), WindowEnd: render.Time(end), Merchants: []render.Object{}}
	names := render.Names(wt.schema)
	for _, row := range rows {
		if int64(len(out.Merchants)) == limit {
			out.Truncated = true
			last := lastKey(out.Merchants)
			out.NextAfter = &last
			break
		}
		out.Merchants = append(out.Merchants, render.Object{Columns: names, Cells: render.Row(wt.schema, row)})
	}
	writeJSON(w, http.StatusOK, out)
}
