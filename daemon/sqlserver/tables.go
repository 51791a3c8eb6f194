package sqlserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"

	gsql "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/sqltypes"
	"github.com/shopspring/decimal"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

const typeVarChar = sqltypes.VarChar

// toSQL converts a store value of column c into the SQL column's value.
func toSQL(c *store.Column, v store.Value) any {
	if v.Null {
		return nil
	}
	switch c.Type {
	case store.Int:
		return v.Int
	case store.Money:
		return decimal.New(v.Int, -2)
	case store.Timestamp:
		return wallClock(v.Int, c.Zone)
	case store.Bool:
		if v.Bool() {
			return int8(1)
		}
		return int8(0)
	default:
		return v.Str
	}
}

// wallClock is µs since the epoch as a DATETIME: the wall clock in zone
// (UTC when nil), with the zone dropped, as MySQL's DATETIME has none.
func wallClock(us int64, zone *time.Location) time.Time {
	if zone == nil {
		zone = time.UTC
	}
	t := time.UnixMicro(us).In(zone)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// fromSQL converts an index range bound into a store value of column c;
// ok is false for a value the store cannot compare (the range is then not
// narrowed on that column, and the engine's filter decides).
func fromSQL(ctx *gsql.Context, c *store.Column, v any) (store.Value, bool) {
	switch c.Type {
	case store.String:
		s, ok := v.(string)
		return store.S(s), ok && !strings.ContainsRune(s, 0)
	case store.Int:
		n, _, err := types.Int64.Convert(ctx, v)
		if err != nil {
			return store.Value{}, false
		}
		return store.I(n.(int64)), true
	case store.Timestamp:
		t, _, err := timeType.Convert(ctx, v)
		if err != nil {
			return store.Value{}, false
		}
		tt := t.(time.Time)
		zone := c.Zone
		if zone == nil {
			zone = time.UTC
		}
		local := time.Date(tt.Year(), tt.Month(), tt.Day(), tt.Hour(), tt.Minute(), tt.Second(), tt.Nanosecond(), zone)
		return store.I(local.UnixMicro()), true
	}
	return store.Value{}, false
}

// part is a partition: one key range of a table (or one version range of
// a change feed).
type part struct {
	kr       store.KeyRange
	from, to int64 // change feed versions (to < 0: latest)
	dedupe   bool  // several widened ranges may overlap: drop repeated keys
	n        int
}

func (p *part) Key() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.n)) }

// dataTable is a store table at a version (-1: latest).
type dataTable struct {
	e       *Engine
	info    store.TableInfo
	version int64
	schema  gsql.Schema
	lookup  *gsql.IndexLookup
}

var (
	_ gsql.IndexAddressableTable = (*dataTable)(nil)
	_ gsql.IndexedTable          = (*dataTable)(nil)
	_ gsql.CommentedTable        = (*dataTable)(nil)
)

func newDataTable(e *Engine, info store.TableInfo, version int64) *dataTable {
	t := &dataTable{e: e, info: info, version: version}
	for i, c := range info.Schema.Columns {
		key := i < info.Schema.KeyColumns
		t.schema = append(t.schema, &gsql.Column{
			Name: c.Name, Type: sqlType(c, key), Nullable: c.Nullable, Source: info.Name,
			DatabaseSource: DatabaseName, PrimaryKey: key, Comment: c.Doc,
		})
	}
	return t
}

func (t *dataTable) Name() string    { return t.info.Name }
func (t *dataTable) String() string  { return t.info.Name }
func (t *dataTable) Comment() string { return t.info.Doc }
func (t *dataTable) Schema() gsql.Schema {
	return t.schema
}
func (t *dataTable) Collation() gsql.CollationID { return gsql.Collation_Default }

func (t *dataTable) Partitions(*gsql.Context) (gsql.PartitionIter, error) {
	return gsql.PartitionsToPartitionIter(&part{}), nil
}

func (t *dataTable) LookupPartitions(ctx *gsql.Context, lookup gsql.IndexLookup) (gsql.PartitionIter, error) {
	return gsql.PartitionsToPartitionIter(t.keyRanges(ctx, lookup)...), nil
}

func (t *dataTable) IndexedAccess(_ *gsql.Context, lookup gsql.IndexLookup) gsql.IndexedTable {
	c := *t
	c.lookup = &lookup
	return &c
}

func (t *dataTable) GetIndexes(*gsql.Context) ([]gsql.Index, error) {
	s := &t.info.Schema
	if s.KeyColumns == 0 {
		return nil, nil
	}
	idx := &index{table: t.info.Name, name: "PRIMARY", unique: true}
	for i := range s.KeyColumns {
		idx.columns = append(idx.columns, gsql.ColumnExpressionType{
			Expression: t.info.Name + "." + s.Columns[i].Name, Type: t.schema[i].Type,
		})
	}
	return []gsql.Index{idx}, nil
}

// PreciseMatch is false: a key range may read more rows than the filter
// keeps (open bounds are read inclusive), and the engine filters them.
func (t *dataTable) PreciseMatch() bool { return false }

// keyRanges turns an index lookup into key ranges: equalities on the
// first key columns become the prefix, bounds on the next one From and To.
func (t *dataTable) keyRanges(ctx *gsql.Context, lookup gsql.IndexLookup) []gsql.Partition {
	ranges, ok := lookup.Ranges.(gsql.MySQLRangeCollection)
	if !ok {
		return []gsql.Partition{&part{}}
	}
	s := &t.info.Schema
	var out []gsql.Partition
	widened := false
	for i, rng := range ranges {
		p := &part{n: i}
		exact := true
		for col, ce := range rng {
			if col >= s.KeyColumns {
				break
			}
			c := &s.Columns[col]
			lo, hasLo := boundValue(ctx, c, ce.LowerBound)
			hi, hasHi := boundValue(ctx, c, ce.UpperBound)
			if hasLo && hasHi && lo == hi &&
				ce.LowerBound.TypeAsLowerBound() == gsql.Closed && ce.UpperBound.TypeAsUpperBound() == gsql.Closed &&
				col < s.KeyColumns {
				p.kr.Prefix = append(p.kr.Prefix, lo)
				if len(p.kr.Prefix) == s.KeyColumns {
					break
				}
				continue
			}
			if c.Type != store.String && c.Type != store.Int && c.Type != store.Timestamp {
				exact = false
				break
			}
			if hasLo {
				v := lo
				p.kr.From = &v
			}
			if hasHi {
				v := hi
				p.kr.To = &v
			}
			exact = false
			break
		}
		if !exact {
			widened = true
		}
		out = append(out, p)
	}
	if widened && len(out) > 1 {
		for _, p := range out {
			p.(*part).dedupe = true
		}
	}
	if len(out) == 0 {
		return []gsql.Partition{} // an empty lookup reads nothing
	}
	return out
}

// boundValue is a range cut's value as a store value, if it binds.
func boundValue(ctx *gsql.Context, c *store.Column, cut gsql.MySQLRangeCut) (store.Value, bool) {
	if !gsql.MySQLRangeCutIsBinding(cut) {
		return store.Value{}, false
	}
	key := gsql.GetMySQLRangeCutKey(cut)
	if key == nil {
		return store.Value{}, false
	}
	return fromSQL(ctx, c, key)
}

func (t *dataTable) PartitionRows(ctx *gsql.Context, p gsql.Partition) (gsql.RowIter, error) {
	s, err := sessionOf(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	pt := p.(*part)
	sch := &t.info.Schema
	var seen map[string]bool
	if pt.dedupe {
		seen = map[string]bool{}
	}
	seq := func(yield func(gsql.Row, error) bool) {
		_, err := snap.Scan(ctx, t.info.Name, t.version, pt.kr, func(r store.Row) error {
			if err := s.count(ctx); err != nil {
				return err
			}
			if seen != nil {
				k := fmt.Sprint(r[:sch.KeyColumns])
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			row := make(gsql.Row, len(r))
			for i := range r {
				row[i] = toSQL(&sch.Columns[i], r[i])
			}
			if !yield(row, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(nil, fmt.Errorf("read %s: %w", t.info.Name, err))
		}
	}
	return newPullIter(seq), nil
}

// errStop ends a scan whose reader stopped early.
var errStop = fmt.Errorf("stop")

// pullIter turns a scan (push) into a RowIter (pull) with iter.Pull: the
// scan runs as a coroutine of the reader, inside the statement's snapshot.
type pullIter struct {
	next func() (gsql.Row, error, bool)
	stop func()
}

func newPullIter(seq iter.Seq2[gsql.Row, error]) *pullIter {
	next, stop := iter.Pull2(seq)
	return &pullIter{next: next, stop: stop}
}

func (it *pullIter) Next(*gsql.Context) (gsql.Row, error) {
	row, err, ok := it.next()
	if !ok {
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	return row, nil
}

func (it *pullIter) Close(*gsql.Context) error { it.stop(); return nil }

// index is a table's PRIMARY index (its key columns), or a change feed's
// _commit_version.
type index struct {
	table, name string
	unique      bool
	columns     []gsql.ColumnExpressionType
}

var _ gsql.Index = (*index)(nil)

func (i *index) ID() string       { return i.name }
func (i *index) Database() string { return DatabaseName }
func (i *index) Table() string    { return i.table }
func (i *index) Expressions() []string {
	out := make([]string, len(i.columns))
	for k, c := range i.columns {
		out[k] = c.Expression
	}
	return out
}
func (i *index) IsUnique() bool                                     { return i.unique }
func (i *index) IsSpatial() bool                                    { return false }
func (i *index) IsFullText() bool                                   { return false }
func (i *index) IsVector() bool                                     { return false }
func (i *index) Comment() string                                    { return "" }
func (i *index) IndexType() string                                  { return "BTREE" }
func (i *index) IsGenerated() bool                                  { return false }
func (i *index) ColumnExpressionTypes() []gsql.ColumnExpressionType { return i.columns }
func (i *index) CanSupport(*gsql.Context, ...gsql.Range) bool       { return true }
func (i *index) CanSupportOrderBy(gsql.Expression) bool             { return false }
func (i *index) PrefixLengths() []uint16                            { return nil }

// historyTable is a table's commit log.
type historyTable struct {
	info   store.TableInfo
	schema gsql.Schema
}

func newHistoryTable(info store.TableInfo) *historyTable {
	name := info.Name + historySuffix
	col := func(n string, t gsql.Type) *gsql.Column {
		return &gsql.Column{Name: n, Type: t, Source: name, DatabaseSource: DatabaseName, Nullable: n != "version"}
	}
	sch := gsql.Schema{col("version", types.Int64), col("timestamp", commitTimeType)}
	for _, n := range render.CommitNames()[2:] {
		sch = append(sch, col(n, types.Text))
	}
	sch[0].PrimaryKey = true
	return &historyTable{info: info, schema: sch}
}

var commitTimeType = types.MustCreateDatetimeType(sqltypes.Datetime, 3)

func (t *historyTable) Name() string                { return t.info.Name + historySuffix }
func (t *historyTable) String() string              { return t.Name() }
func (t *historyTable) Comment() string             { return "commit log of " + t.info.Name }
func (t *historyTable) Schema() gsql.Schema         { return t.schema }
func (t *historyTable) Collation() gsql.CollationID { return gsql.Collation_Default }
func (t *historyTable) Partitions(*gsql.Context) (gsql.PartitionIter, error) {
	return gsql.PartitionsToPartitionIter(&part{}), nil
}

func (t *historyTable) PartitionRows(ctx *gsql.Context, _ gsql.Partition) (gsql.RowIter, error) {
	s, err := sessionOf(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	commits, err := snap.History(t.info.Name)
	if err != nil {
		return nil, err
	}
	rows := make([]gsql.Row, 0, len(commits))
	for _, c := range commits {
		if err := s.count(ctx); err != nil {
			return nil, err
		}
		cells := render.Commit(c)
		row := gsql.Row{c.Version, time.UnixMilli(c.Timestamp).UTC()}
		for _, cell := range cells[2:] {
			if cell.Text == "" {
				row = append(row, nil)
				continue
			}
			row = append(row, cell.Text)
		}
		rows = append(rows, row)
	}
	return gsql.RowsToRowIter(rows...), nil
}

// changesTable is a table's change feed; a filter on _commit_version reads
// only those versions.
type changesTable struct {
	e      *Engine
	info   store.TableInfo
	schema gsql.Schema
	lookup *gsql.IndexLookup
}

var _ gsql.IndexAddressableTable = (*changesTable)(nil)

func newChangesTable(e *Engine, info store.TableInfo) *changesTable {
	name := info.Name + changesSuffix
	var sch gsql.Schema
	for _, c := range info.Schema.Columns {
		sch = append(sch, &gsql.Column{Name: c.Name, Type: sqlType(c, false), Nullable: true, Source: name, DatabaseSource: DatabaseName, Comment: c.Doc})
	}
	sch = append(sch,
		&gsql.Column{Name: "_change_type", Type: types.Text, Source: name, DatabaseSource: DatabaseName},
		&gsql.Column{Name: "_commit_version", Type: types.Int64, Source: name, DatabaseSource: DatabaseName},
		&gsql.Column{Name: "_commit_timestamp", Type: commitTimeType, Source: name, DatabaseSource: DatabaseName},
	)
	return &changesTable{e: e, info: info, schema: sch}
}

func (t *changesTable) Name() string                { return t.info.Name + changesSuffix }
func (t *changesTable) String() string              { return t.Name() }
func (t *changesTable) Comment() string             { return "change feed of " + t.info.Name }
func (t *changesTable) Schema() gsql.Schema         { return t.schema }
func (t *changesTable) Collation() gsql.CollationID { return gsql.Collation_Default }
func (t *changesTable) Partitions(*gsql.Context) (gsql.PartitionIter, error) {
	return gsql.PartitionsToPartitionIter(&part{from: 0, to: -1}), nil
}
func (t *changesTable) PreciseMatch() bool { return false }

func (t *changesTable) GetIndexes(*gsql.Context) ([]gsql.Index, error) {
	return []gsql.Index{&index{table: t.Name(), name: "commit_version", columns: []gsql.ColumnExpressionType{
		{Expression: t.Name() + "._commit_version", Type: types.Int64},
	}}}, nil
}

func (t *changesTable) IndexedAccess(_ *gsql.Context, lookup gsql.IndexLookup) gsql.IndexedTable {
	c := *t
	c.lookup = &lookup
	return &c
}

// LookupPartitions reads the versions each range of _commit_version covers.
func (t *changesTable) LookupPartitions(ctx *gsql.Context, lookup gsql.IndexLookup) (gsql.PartitionIter, error) {
	ranges, ok := lookup.Ranges.(gsql.MySQLRangeCollection)
	if !ok {
		return t.Partitions(ctx)
	}
	col := &store.Column{Type: store.Int}
	var out []gsql.Partition
	for i, rng := range ranges {
		p := &part{n: i, from: 0, to: -1}
		if len(rng) > 0 {
			if lo, ok := boundValue(ctx, col, rng[0].LowerBound); ok {
				p.from = max(lo.Int, 0)
			}
			if hi, ok := boundValue(ctx, col, rng[0].UpperBound); ok {
				if hi.Int < 0 {
					continue
				}
				p.to = hi.Int
			}
		}
		out = append(out, p)
	}
	return gsql.PartitionsToPartitionIter(out...), nil
}

func (t *changesTable) PartitionRows(ctx *gsql.Context, p gsql.Partition) (gsql.RowIter, error) {
	s, err := sessionOf(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	pt := p.(*part)
	latest, err := snap.LatestVersion(t.info.Name)
	if err != nil {
		return nil, err
	}
	from, to := pt.from, pt.to
	if to < 0 || to > latest {
		to = latest
	}
	sch := &t.info.Schema
	seq := func(yield func(gsql.Row, error) bool) {
		if from > to {
			return
		}
		err := snap.Changes(ctx, t.info.Name, from, to, func(c store.Change) error {
			if err := s.count(ctx); err != nil {
				return err
			}
			row := make(gsql.Row, 0, len(c.Row)+3)
			for i := range c.Row {
				row = append(row, toSQL(&sch.Columns[i], c.Row[i]))
			}
			row = append(row, c.Type.String(), c.Version, time.UnixMilli(c.Timestamp).UTC())
			if !yield(row, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(nil, fmt.Errorf("changes %s: %w", t.info.Name, err))
		}
	}
	return newPullIter(seq), nil
}

// compile-time: the scan callbacks take a context.
var _ context.Context = (*gsql.Context)(nil)
