package agg

import (
	"slices"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// Derived is a table the stream processor keeps. Each is one file of this
// package declaring its schema and key (Def), how a micro-batch of raw
// changes updates it (Apply) and how it is computed from scratch (Build),
// registered once in Tables.
type Derived interface {
	// Def is the table's declaration. Its Properties are the parameters the
	// table is computed with: when the stored ones differ (a window size
	// added, the zone changed, a column added), the processor rebuilds the
	// table from the raw history before it runs a micro-batch.
	Def() store.TableDef
	// Apply folds a micro-batch into the table's next version.
	Apply(b *Batch, w *store.TableWriter) error
	// Build returns every row of the table computed from u, in key order.
	Build(u *Universe) ([]store.Row, error)
	// Bookkeeping names columns that record when a row changed rather than
	// what it holds (last_raw_version): reconcile does not compare them and
	// a rebuild keeps the stored values of rows it does not change.
	Bookkeeping() []string
}

// Config is what the derived tables are computed with.
type Config struct {
	// WindowSizes are merchant_window_aggregates' sizes ("1h", "1d", "1w"):
	// nil means the default, 1d and 1w; an empty list keeps no windows (the
	// config's windows.sizes: [], already defaulted when absent).
	WindowSizes []string
	// Zone is the windows' time zone (default Asia/Kolkata).
	Zone *time.Location
	// Rules are merchant_alerts' rules over the windows.
	Rules []Rule
}

// Tables returns the derived tables, in the order a micro-batch writes
// them. This list is the one place a derived table is registered: the
// processor, reconcile, reprocess, the Delta export, the CLI, the HTTP API
// and SQL enumerate it (or the store's table list it creates).
func Tables(cfg Config) ([]Derived, error) {
	w, err := newWindows(cfg)
	if err != nil {
		return nil, err
	}
	a, err := newAlerts(cfg, w)
	if err != nil {
		return nil, err
	}
	return []Derived{totals{}, w, a}, nil
}

// Defs returns the declarations of every table: the raw table first, then
// the derived ones; what store.Open's Options.Tables wants.
func Defs(cfg Config) ([]store.TableDef, error) {
	ds, err := Tables(cfg)
	if err != nil {
		return nil, err
	}
	defs := []store.TableDef{cdc.RawDef()}
	for _, d := range ds {
		def := d.Def()
		def.Properties = properties(d)
		defs = append(defs, def)
	}
	defs = append(defs, cdc.AuditDef()) // a source table, declared after the derived ones
	return defs, nil
}

// Open opens the store in dataDir with every table declared (opts.Tables is
// set from cfg).
func Open(dataDir string, cfg Config, opts store.Options) (*store.DB, error) {
	defs, err := Defs(cfg)
	if err != nil {
		return nil, err
	}
	opts.Tables = defs
	return store.Open(dataDir, opts)
}

// mergeDeltas applies per-key changes to a table in key order: for each
// key, fold turns the current row (nil if none or deleted) into the next
// one (nil: the row goes away). Unchanged rows are not written.
func mergeDeltas[D any](w *store.TableWriter, keys []store.Row, deltas []D, fold func(key, cur store.Row, d *D) (store.Row, error)) (int, error) {
	written := 0
	for i, key := range keys {
		cur, found, err := w.Get(key)
		if err != nil {
			return written, err
		}
		var before store.Row
		if found && !cur.Deleted {
			before = cur.Row
		}
		next, err := fold(key, before, &deltas[i])
		if err != nil {
			return written, err
		}
		switch {
		case next == nil && before != nil:
			err = w.Delete(before, 0)
		case next == nil:
			continue
		case before == nil:
			err = w.Insert(next)
		case slices.Equal(before, next):
			continue
		default:
			err = w.Update(before, next)
		}
		if err != nil {
			return written, err
		}
		written++
	}
	return written, nil
}

// sortedRows returns rows (keyed by their encoded store key, so byte order
// is the table's key order) in key order, with the bookkeeping column
// lastCol set to version.
func sortedRows(rows map[string]store.Row, version int64, lastCol int) []store.Row {
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]store.Row, len(keys))
	for i, k := range keys {
		out[i] = rows[k]
		out[i][lastCol].Int = version
	}
	return out
}

var timeUTC = time.UTC

const rfc3339Micro = "2006-01-02T15:04:05.999999Z07:00"
