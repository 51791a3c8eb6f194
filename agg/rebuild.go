package agg

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// columnsProperty records, with a derived table's properties, the columns
// it was computed with: a release that adds a column makes them differ, and
// the table is rebuilt.
const columnsProperty = "upicdc.columns"

// properties are the parameters a derived table is computed with.
func properties(d Derived) map[string]string {
	def := d.Def()
	props := maps.Clone(def.Properties)
	if props == nil {
		props = map[string]string{}
	}
	names := make([]string, len(def.Schema.Columns))
	for i, c := range def.Schema.Columns {
		names[i] = c.Name
	}
	props[columnsProperty] = strings.Join(names, ",")
	return props
}

// Prepare rebuilds, from the raw history, every derived table whose stored
// parameters differ from the configured ones (a window size added, the
// zone changed, a column added) or that the stream has never written while
// it has already read raw versions (a table new in this release). Each
// rebuild is one bbolt transaction at the stream's checkpoint: a crash
// loses or double counts nothing. It returns the tables rebuilt.
func (p *Processor) Prepare(ctx context.Context) ([]string, error) {
	if p.err != nil {
		return nil, p.err
	}
	cp, err := p.db.Checkpoint(p.opts.Stream)
	if err != nil {
		return nil, err
	}
	var rebuilt []string
	for _, d := range p.derived {
		name := d.Def().Name
		stored, err := p.db.Properties(name)
		if err != nil {
			return rebuilt, err
		}
		_, written := cp.Versions[name]
		want := properties(d)
		if maps.Equal(stored, want) && (written || cp.SourceVersion == 0) {
			continue
		}
		op := "BACKFILL"
		reason := "new table"
		if !maps.Equal(stored, want) {
			reason = "parameters changed"
		}
		p.log.Info("rebuilding a derived table from the raw history", "table", name, "reason", reason,
			"raw_version", cp.SourceVersion, "stored", stored, "configured", want)
		if _, err := p.rebuild(ctx, d, op); err != nil {
			return rebuilt, err
		}
		rebuilt = append(rebuilt, name)
	}
	return rebuilt, nil
}

// RebuildResult says what a rebuild changed.
type RebuildResult struct {
	Table      string
	Version    int64 // the table's new version
	RawVersion int64 // the raw version it was rebuilt at
	Inserted   int64
	Updated    int64
	Deleted    int64
}

// Reprocess rebuilds derived table name from the raw history and commits
// the result as a new version of it (operation REPROCESS), whose change feed
// carries the differences from what it held.
func (p *Processor) Reprocess(ctx context.Context, name string) (RebuildResult, error) {
	if p.err != nil {
		return RebuildResult{}, p.err
	}
	for _, d := range p.derived {
		if d.Def().Name == name {
			return p.rebuild(ctx, d, "REPROCESS")
		}
	}
	names := make([]string, len(p.derived))
	for i, d := range p.derived {
		names[i] = d.Def().Name
	}
	return RebuildResult{}, fmt.Errorf("%w %q (derived tables: %s)", store.ErrUnknownTable, name, strings.Join(names, ", "))
}

func (p *Processor) rebuild(ctx context.Context, d Derived, op string) (RebuildResult, error) {
	def := d.Def()
	res := RebuildResult{Table: def.Name}
	cp, committed, err := p.db.Process(ctx, p.opts.Stream, cdc.RawTable, func(tx *store.ProcessTx) error {
		cp := tx.Checkpoint()
		res.RawVersion = cp.SourceVersion
		progress := func(n int64) {
			p.log.Info("rebuild: reading the raw history", "table", def.Name, "change_rows", n, "raw_version", cp.SourceVersion)
		}
		base, err := loadBaseline(tx.Baseline)
		if err != nil {
			return err
		}
		u, _, n, err := replay(tx.SourceChanges, base, cp.SourceVersion, int(tx.SourceRows(1, cp.SourceVersion)/2), progress)
		if err != nil {
			return err
		}
		if err := p.hook(StepRead); err != nil {
			return err
		}
		w, err := tx.Table(def.Name)
		if err != nil {
			return err
		}
		var have []store.Row
		if err := w.ScanCurrent(func(r store.Row) error {
			have = append(have, r)
			return nil
		}); err != nil {
			return err
		}
		want, err := build(d, u, have)
		if err != nil {
			return err
		}
		if err := p.hook(StepComputed); err != nil {
			return err
		}
		s := w.Schema()
		keep := bookkeepingIndexes(s, d.Bookkeeping())
		var werr error
		walkDiff(s, have, want, func(h, nw store.Row) {
			if werr != nil {
				return
			}
			switch {
			case nw == nil:
				werr = w.Delete(h, 0)
			case h == nil:
				werr = w.Insert(nw)
			default:
				if equalExcept(h, nw, keep) {
					return
				}
				werr = w.Update(h, nw)
			}
		})
		if werr != nil {
			return werr
		}
		if err := p.hook(StepWritten); err != nil {
			return err
		}
		tx.SetProperties(def.Name, properties(d))
		tx.Rebuilt(op, map[string]string{"source": cdc.RawTable}, map[string]int64{"numSourceRows": n})
		st := w.Stats()
		res.Inserted, res.Updated, res.Deleted = st.Inserted, st.Updated, st.Deleted
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("%s %s: %w", strings.ToLower(op), def.Name, err)
	}
	if committed {
		res.Version = cp.Versions[def.Name]
	}
	p.log.Info("derived table rebuilt", "table", def.Name, "operation", op, "version", res.Version,
		"raw_version", res.RawVersion, "inserted", res.Inserted, "updated", res.Updated, "deleted", res.Deleted)
	return res, nil
}

func bookkeepingIndexes(s *store.Schema, names []string) []int {
	var out []int
	for _, n := range names {
		if i := s.Index(n); i >= 0 {
			out = append(out, i)
		}
	}
	return out
}

// equalExcept reports whether a and b agree on every column not in skip.
func equalExcept(a, b store.Row, skip []int) bool {
	for i := range a {
		if a[i] != b[i] && !slices.Contains(skip, i) {
			return false
		}
	}
	return true
}
