package agg

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/upicdc/upicdc/store"
)

// WindowsTable is merchant_window_aggregates: per merchant, window size and
// window start, the sales and refunds that landed in the window.
const WindowsTable = "merchant_window_aggregates"

// WindowSizes are the sizes windows.sizes allows.
var windowSizes = []string{"1h", "1d", "1w"}

// WindowSizes returns the allowed window sizes.
func WindowSizes() []string { return slices.Clone(windowSizes) }

// DefaultZone is the windows' default time zone.
const DefaultZone = "Asia/Kolkata"

// windows keeps merchant_window_aggregates. sale(t) lands in the window
// containing the transaction_time of t's newest completed image, refund(t)
// in the window of its newest refunded image, both under t's current
// merchant; a deleted transaction counts nowhere. There is no watermark: a
// late or corrected row moves its amount between windows exactly. A window
// whose sales and refunds counts both return to zero is deleted.
type windows struct {
	sizes []string
	zone  *time.Location
}

const (
	wMerchant = iota
	wSize
	wStart
	wEnd
	wSales
	wRefunds
	wNet
	wSalesCount
	wRefundsCount
	wLastRaw
	wColumns
)

func newWindows(cfg Config) (windows, error) {
	sizes := cfg.WindowSizes
	if sizes == nil {
		sizes = []string{"1d", "1w"}
	}
	w := windows{zone: cfg.Zone}
	for _, s := range sizes {
		if !slices.Contains(windowSizes, s) {
			return w, fmt.Errorf("window size %q: want one of %s", s, strings.Join(windowSizes, ", "))
		}
		if !slices.Contains(w.sizes, s) {
			w.sizes = append(w.sizes, s)
		}
	}
	// Sizes in a fixed order, so the properties do not depend on how the
	// config listed them.
	slices.SortFunc(w.sizes, func(a, b string) int { return slices.Index(windowSizes, a) - slices.Index(windowSizes, b) })
	if w.zone == nil {
		loc, err := time.LoadLocation(DefaultZone)
		if err != nil {
			return w, fmt.Errorf("windows zone: %w", err)
		}
		w.zone = loc
	}
	return w, nil
}

func (w windows) Def() store.TableDef {
	return store.TableDef{
		Name:    WindowsTable,
		Doc:     "per merchant, window size and window start: sales and refunds that landed in the window",
		Derived: true,
		Properties: map[string]string{
			"windows.sizes":    strings.Join(w.sizes, ","),
			"windows.timezone": w.zone.String(),
		},
		Schema: store.Schema{KeyColumns: 3, Columns: []store.Column{
			{Name: "merchant_id", Type: store.String, Doc: "the merchant"},
			{Name: "window_size", Type: store.String, Doc: "1h, 1d or 1w"},
			{Name: "window_start", Type: store.Timestamp, Zone: w.zone, Doc: "the window's first instant (local midnight for 1d, Monday for 1w)"},
			{Name: "window_end", Type: store.Timestamp, Zone: w.zone, Doc: "the next window's start"},
			{Name: "total_sales", Type: store.Money, Doc: "Σ sale of the transactions whose sale lands here"},
			{Name: "total_refunds", Type: store.Money, Doc: "−Σ refund of the transactions whose refund lands here"},
			{Name: "net_sales", Type: store.Money, Doc: "total_sales + total_refunds"},
			{Name: "sales_count", Type: store.Int, Doc: "transactions whose sale lands here"},
			{Name: "refunds_count", Type: store.Int, Doc: "transactions whose refund lands here"},
			{Name: "last_raw_version", Type: store.Int, Doc: "the raw table version that last changed this row"},
		}},
	}
}

func (windows) Bookkeeping() []string { return []string{"last_raw_version"} }

// Window returns the window of size containing the instant t (µs) in zone.
// 1h windows start on the local hour; 1d at local midnight; 1w on Monday
// 00:00 local (ISO week). Local days and weeks follow the zone's calendar,
// so across a DST change a day has 23 or 25 hours.
func Window(size string, t int64, zone *time.Location) (start, end time.Time) {
	lt := time.UnixMicro(t).In(zone)
	switch size {
	case "1h":
		// Truncate within the local hour by elapsed time, which is exact
		// even in the repeated hour of a DST fall-back.
		into := time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
		start = lt.Add(-into)
		return start, start.Add(time.Hour)
	case "1w":
		y, m, d := lt.Date()
		back := (int(lt.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-back, 0, 0, 0, 0, zone)
		return start, time.Date(y, m, d-back+7, 0, 0, 0, 0, zone)
	default: // 1d
		y, m, d := lt.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, zone), time.Date(y, m, d+1, 0, 0, 0, 0, zone)
	}
}

type windowDelta struct {
	key                      store.Row
	end                      int64
	sales, refunds           store.Paise
	salesCount, refundsCount int64
}

// deltas adds c's sales and refunds, with sign, to the windows they land in.
type windowDeltas struct {
	w      windows
	s      store.Schema
	m      map[string]*windowDelta
	keyBuf []byte
	// last is the window last computed for each size: a micro-batch's
	// transaction times cluster, and Window's calendar arithmetic is the
	// cost of add.
	last map[string][2]int64
}

func (w windows) newDeltas() *windowDeltas {
	return &windowDeltas{w: w, s: w.Def().Schema, m: map[string]*windowDelta{}, last: map[string][2]int64{}}
}

// window returns the start and end (µs) of the window of size holding t.
func (wd *windowDeltas) window(size string, t int64) (int64, int64) {
	if l, ok := wd.last[size]; ok && l[0] <= t && t < l[1] {
		return l[0], l[1]
	}
	s, e := Window(size, t, wd.w.zone)
	l := [2]int64{s.UnixMicro(), e.UnixMicro()}
	wd.last[size] = l
	return l[0], l[1]
}

func (wd *windowDeltas) at(merchant, size string, t int64) *windowDelta {
	start, end := wd.window(size, t)
	key := store.Row{{Str: merchant}, {Str: size}, {Int: start}}
	wd.keyBuf, _ = wd.s.EncodeKey(wd.keyBuf[:0], key) // merchant ids never hold NUL (cdc refuses them)
	d := wd.m[string(wd.keyBuf)]
	if d == nil {
		d = &windowDelta{key: key, end: end}
		wd.m[string(wd.keyBuf)] = d
	}
	return d
}

func (wd *windowDeltas) add(c *Contribution, sign int64) {
	if !c.Live {
		return
	}
	for _, size := range wd.w.sizes {
		if c.HasSale {
			d := wd.at(c.MerchantID, size, c.SaleTime)
			d.sales += store.Paise(sign) * c.Sale
			d.salesCount += sign
		}
		if c.HasRefund {
			d := wd.at(c.MerchantID, size, c.RefundTime)
			d.refunds += store.Paise(sign) * c.Refund
			d.refundsCount += sign
		}
	}
}

func (d *windowDelta) apply(r store.Row) {
	r[wSales].Int += int64(d.sales)
	r[wRefunds].Int -= int64(d.refunds)
	r[wNet].Int = r[wSales].Int + r[wRefunds].Int
	r[wSalesCount].Int += d.salesCount
	r[wRefundsCount].Int += d.refundsCount
}

func (d *windowDelta) empty() store.Row {
	r := make(store.Row, wColumns)
	copy(r, d.key)
	r[wEnd] = store.Value{Int: d.end}
	return r
}

func (w windows) Apply(b *Batch, tw *store.TableWriter) error {
	wd := w.newDeltas()
	for i := range b.Txns {
		t := &b.Txns[i]
		if t.OldFound {
			wd.add(&t.Old, -1)
		}
		wd.add(&t.New, +1)
	}
	enc := make([]string, 0, len(wd.m))
	for k, d := range wd.m {
		if d.sales == 0 && d.refunds == 0 && d.salesCount == 0 && d.refundsCount == 0 {
			continue // a contribution that moved nowhere
		}
		enc = append(enc, k)
	}
	slices.Sort(enc)
	keys := make([]store.Row, len(enc))
	ds := make([]*windowDelta, len(enc))
	for i, k := range enc {
		ds[i] = wd.m[k]
		keys[i] = ds[i].key
	}
	_, err := mergeDeltas(tw, keys, ds, func(_, cur store.Row, d **windowDelta) (store.Row, error) {
		next := (*d).empty()
		if cur != nil {
			copy(next, cur)
		}
		(*d).apply(next)
		if next[wSalesCount].Int == 0 && next[wRefundsCount].Int == 0 {
			return nil, nil
		}
		next[wLastRaw].Int = b.RawVersion
		return next, nil
	})
	return err
}

func (w windows) Build(u *Universe) ([]store.Row, error) {
	wd := w.newDeltas()
	for c := range u.Txns {
		wd.add(&c, +1)
	}
	rows := make(map[string]store.Row, len(wd.m))
	for k, d := range wd.m {
		if d.salesCount == 0 && d.refundsCount == 0 {
			continue
		}
		r := d.empty()
		d.apply(r)
		rows[k] = r
	}
	return sortedRows(rows, u.RawVersion, wLastRaw), nil
}
