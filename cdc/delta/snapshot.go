package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Snapshot is a table's state at one version.
type Snapshot struct {
	Version   int64
	Timestamp int64 // _commit_timestamp of Version, ms since the Unix epoch
	Protocol  Protocol
	Metadata  Metadata
	Schema    Schema
	// Files are the live data files, sorted by path.
	Files []AddFile
	// Tombstones are the removed files still in the log, sorted by path.
	Tombstones []RemoveFile
	// Txns is the latest txn action per appId.
	Txns map[string]Txn
	// Checkpoint is the checkpoint version the replay started from, or -1.
	Checkpoint int64

	table *Table
}

// Snapshot replays the log up to version (negative: the latest), starting
// from the newest complete checkpoint at or below it.
func (t *Table) Snapshot(version int64) (*Snapshot, error) {
	l, err := t.list()
	if err != nil {
		return nil, err
	}
	return t.snapshot(l, version)
}

func (t *Table) snapshot(l *logListing, version int64) (*Snapshot, error) {
	if version < 0 {
		version = l.latest
	}
	if version < 0 || version > l.latest {
		return nil, fmt.Errorf("%w: version %d (latest is %d)", ErrVersionNotFound, version, l.latest)
	}
	s := &Snapshot{Version: version, Checkpoint: -1, Txns: map[string]Txn{}, table: t}
	adds := map[string]AddFile{}
	removes := map[string]RemoveFile{}
	var proto *Protocol
	var meta *Metadata
	apply := func(a *action) {
		switch {
		case a.Add != nil:
			adds[a.Add.Path] = *a.Add
			delete(removes, a.Add.Path)
		case a.Remove != nil:
			delete(adds, a.Remove.Path)
			removes[a.Remove.Path] = *a.Remove
		case a.MetaData != nil:
			meta = a.MetaData
		case a.Protocol != nil:
			proto = a.Protocol
		case a.Txn != nil:
			s.Txns[a.Txn.AppID] = *a.Txn
		}
	}
	start := int64(0)
	for i := len(l.checkpoints) - 1; i >= 0; i-- {
		cp := l.checkpoints[i]
		if cp.version > version {
			continue
		}
		actions, err := t.readCheckpoint(cp)
		if err != nil {
			return nil, err
		}
		for i := range actions {
			apply(&actions[i])
		}
		s.Checkpoint, start = cp.version, cp.version+1
		break
	}
	for v := start; v <= version; v++ {
		c, err := t.readCommit(l, v)
		if err != nil {
			if s.Checkpoint < 0 {
				return nil, fmt.Errorf("version %d cannot be rebuilt (no checkpoint at or below it): %w", version, err)
			}
			return nil, err
		}
		// Within one commit, a path is either added or removed (the protocol
		// forbids both); removes first is a no-op difference.
		for i := range c.Removes {
			apply(&action{Remove: &c.Removes[i]})
		}
		for i := range c.Adds {
			apply(&action{Add: &c.Adds[i]})
		}
		for i := range c.Txns {
			apply(&action{Txn: &c.Txns[i]})
		}
		if c.Metadata != nil {
			meta = c.Metadata
		}
		if c.Protocol != nil {
			proto = c.Protocol
		}
		if v == version {
			s.Timestamp = c.Timestamp
		}
	}
	if s.Timestamp == 0 && s.Checkpoint == version {
		// Checkpoint without its JSON commit (log cleanup): no timestamp to report.
		if c, err := t.readCommit(l, version); err == nil {
			s.Timestamp = c.Timestamp
		}
	}
	if proto == nil || meta == nil {
		return nil, fmt.Errorf("%s: %w: no protocol or metaData action up to version %d", t.dir, ErrNotDeltaTable, version)
	}
	s.Protocol, s.Metadata = *proto, *meta
	var err error
	if s.Schema, err = ParseSchema(meta.SchemaString); err != nil {
		return nil, err
	}
	for _, a := range adds {
		s.Files = append(s.Files, a)
	}
	for _, r := range removes {
		s.Tombstones = append(s.Tombstones, r)
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Path < s.Files[j].Path })
	sort.Slice(s.Tombstones, func(i, j int) bool { return s.Tombstones[i].Path < s.Tombstones[j].Path })
	return s, nil
}

// checkReadable refuses reader features this package does not implement.
func checkReadable(p Protocol, m Metadata) error {
	if p.MinReaderVersion > 3 {
		return fmt.Errorf("%w: minReaderVersion %d", ErrUnsupported, p.MinReaderVersion)
	}
	for _, f := range p.ReaderFeatures {
		switch f {
		case "timestampNtz", "vacuumProtocolCheck", "v2Checkpoint":
		default:
			return fmt.Errorf("%w: reader feature %q", ErrUnsupported, f)
		}
	}
	if mode := m.Configuration["delta.columnMapping.mode"]; mode != "" && mode != "none" {
		return fmt.Errorf("%w: column mapping mode %q", ErrUnsupported, mode)
	}
	return nil
}

// Rows calls fn for every row of the snapshot, file by file in path order.
// fn must not keep row: it is reused.
func (s *Snapshot) Rows(ctx context.Context, fn func(Row) error) error {
	if err := checkReadable(s.Protocol, s.Metadata); err != nil {
		return err
	}
	for _, f := range s.Files {
		if len(f.DeletionVector) > 0 && string(f.DeletionVector) != "null" {
			return fmt.Errorf("%w: deletion vector on %s", ErrUnsupported, f.Path)
		}
		if err := s.table.readDataFile(ctx, s.Schema, s.Metadata.PartitionColumns, f.Path, f.PartitionValues, false, func(r Row, _ string) error {
			return fn(r)
		}); err != nil {
			return err
		}
	}
	return nil
}

// readDataFile reads a data or change-data file as rows of schema; with
// changeType it also returns each row's _change_type column.
func (t *Table) readDataFile(ctx context.Context, schema Schema, partitionCols []string, path string, pv map[string]*string, changeType bool, fn func(Row, string) error) error {
	local, err := t.filePath(path)
	if err != nil {
		return err
	}
	isPartition := map[string]bool{}
	for _, c := range partitionCols {
		isPartition[strings.ToLower(c)] = true
	}
	fixed := make(Row, len(schema)) // partition values; nil for file columns
	for i, f := range schema {
		if !isPartition[strings.ToLower(f.Name)] {
			continue
		}
		var raw *string
		for k, v := range pv {
			if strings.EqualFold(k, f.Name) {
				raw = v
			}
		}
		if fixed[i], err = parsePartitionValue(f.Type, raw); err != nil {
			return fmt.Errorf("%s: partition column %s: %w", path, f.Name, err)
		}
	}
	return readParquet(local, func(pf *parquet.File) error {
		// Map the file's top-level leaf columns to schema positions; nested
		// columns get an assembler over all their leaves.
		fileCols := pf.Schema().Columns()
		target := make([]int, len(fileCols)) // leaf → schema index, -1 skip, -2 _change_type, -3 nested
		conv := make([]converter, len(fileCols))
		var nested []*nestedColumn
		type leafRef struct{ col, leaf int }
		nestedLeaf := make([]leafRef, len(fileCols))
		for ci := range target {
			target[ci] = -1
		}
		for _, f := range pf.Schema().Fields() {
			si := schema.Index(f.Name())
			if si < 0 || schema[si].Type != "" || isPartition[strings.ToLower(schema[si].Name)] {
				continue
			}
			typ, err := parseDataType(schema[si].Nested)
			if err != nil {
				return fmt.Errorf("%s: column %s: %w", path, schema[si].Name, err)
			}
			nc, err := newNestedColumn(f, f.Name(), typ, pf.Schema())
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			nc.schemaIndex = si
			for li, ci := range nc.columns {
				target[ci], nestedLeaf[ci] = -3, leafRef{len(nested), li}
			}
			nested = append(nested, nc)
		}
		for ci, p := range fileCols {
			if len(p) != 1 || target[ci] == -3 {
				continue
			}
			if changeType && p[0] == "_change_type" {
				target[ci] = -2
				continue
			}
			si := schema.Index(p[0])
			if si < 0 || isPartition[strings.ToLower(schema[si].Name)] {
				continue
			}
			leaf, _ := pf.Schema().Lookup(p...)
			c, err := converterFor(schema[si].Type, leaf.Node)
			if err != nil {
				return fmt.Errorf("%s: column %s: %w", path, p[0], err)
			}
			target[ci], conv[ci] = si, c
		}
		cursors := make([]cursor, len(nested))
		for i, nc := range nested {
			cursors[i] = cursor{vals: make([][]parquet.Value, len(nc.columns)), pos: make([]int, len(nc.columns))}
		}
		row := make(Row, len(schema))
		buf := make([]parquet.Row, 256)
		for _, rg := range pf.RowGroups() {
			rows := rg.Rows()
			for {
				if err := ctx.Err(); err != nil {
					rows.Close()
					return err
				}
				n, err := rows.ReadRows(buf)
				for _, pr := range buf[:n] {
					copy(row, fixed)
					ct := ""
					for i := range cursors {
						for j := range cursors[i].vals {
							cursors[i].vals[j], cursors[i].pos[j] = cursors[i].vals[j][:0], 0
						}
					}
					for _, v := range pr {
						ci := v.Column()
						if ci < 0 || ci >= len(target) {
							continue
						}
						if target[ci] == -3 {
							r := nestedLeaf[ci]
							cursors[r.col].vals[r.leaf] = append(cursors[r.col].vals[r.leaf], v)
							continue
						}
						if v.IsNull() {
							continue
						}
						switch si := target[ci]; {
						case si >= 0:
							x, err := conv[ci](v)
							if err != nil {
								rows.Close()
								return fmt.Errorf("%s: column %s: %w", path, schema[si].Name, err)
							}
							row[si] = x
						case si == -2:
							ct = string(v.ByteArray())
						}
					}
					for i, nc := range nested {
						x, err := nc.root.read(&cursors[i])
						if err != nil {
							rows.Close()
							return fmt.Errorf("%s: column %s: %w", path, schema[nc.schemaIndex].Name, err)
						}
						row[nc.schemaIndex] = x
					}
					if err := fn(row, ct); err != nil {
						rows.Close()
						return err
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			rows.Close()
		}
		return nil
	})
}

// Change is one change data feed row.
type Change struct {
	Row        Row    // the data columns, in schema order
	ChangeType string // insert, update_preimage, update_postimage or delete
	Version    int64  // _commit_version
	Timestamp  int64  // _commit_timestamp, ms since the Unix epoch
}

// Time returns the change's _commit_timestamp.
func (c Change) Time() time.Time { return time.UnixMilli(c.Timestamp).UTC() }

// Changes calls fn for every change data feed row of versions from..to
// (inclusive; to < 0 means the latest), version by version: a version's cdc
// files if it has any, else its add files (dataChange) as insert and its
// remove files (dataChange) as delete. Change data feed must be enabled at
// every version read. The schema is the one at to. fn must not keep c.Row.
func (t *Table) Changes(ctx context.Context, from, to int64, fn func(Change) error) (Schema, error) {
	l, err := t.list()
	if err != nil {
		return nil, err
	}
	return t.changes(ctx, l, from, to, nil, fn)
}

// ChangesByTime is [Table.Changes] over the versions whose _commit_timestamp
// (ms since the Unix epoch) is in start..end, end < 0 meaning no bound, as
// delta-rs's starting and ending timestamps: with in-commit timestamps a
// version is judged by its own timestamp, even if it is out of order.
func (t *Table) ChangesByTime(ctx context.Context, start, end int64, fn func(Change) error) (Schema, error) {
	l, err := t.list()
	if err != nil {
		return nil, err
	}
	if end >= 0 && start > end {
		return nil, fmt.Errorf("%w: start timestamp %d > end timestamp %d", ErrInvalidRange, start, end)
	}
	in := map[int64]bool{}
	from, to := int64(-1), int64(-1)
	for v := l.latest; v >= 0; v-- {
		if _, ok := l.commits[v]; !ok {
			break // commits before a log cleanup are gone
		}
		c, err := t.readCommit(l, v)
		if err != nil {
			return nil, err
		}
		if c.Timestamp >= start && (end < 0 || c.Timestamp <= end) {
			in[v] = true
			from = v
			if to < 0 {
				to = v
			}
		}
	}
	if from < 0 {
		return nil, fmt.Errorf("%w: no commit with a timestamp in the range (latest is version %d)", ErrVersionNotFound, l.latest)
	}
	return t.changes(ctx, l, from, to, func(v int64) bool { return in[v] }, fn)
}

// changes reads the change feed of from..to, skipping versions keep refuses.
func (t *Table) changes(ctx context.Context, l *logListing, from, to int64, keep func(int64) bool, fn func(Change) error) (Schema, error) {
	var err error
	if to < 0 {
		to = l.latest
	}
	if from < 0 || from > l.latest {
		return nil, fmt.Errorf("%w: start version %d (latest is %d)", ErrVersionNotFound, from, l.latest)
	}
	if from > to {
		return nil, fmt.Errorf("%w: from %d > to %d", ErrInvalidRange, from, to)
	}
	if to > l.latest {
		return nil, fmt.Errorf("%w: end version %d (latest is %d)", ErrVersionNotFound, to, l.latest)
	}
	start, err := t.snapshot(l, from)
	if err != nil {
		return nil, err
	}
	final := start
	if to != from {
		if final, err = t.snapshot(l, to); err != nil {
			return nil, err
		}
	}
	if err := checkReadable(final.Protocol, final.Metadata); err != nil {
		return nil, err
	}
	schema, parts := final.Schema, final.Metadata.PartitionColumns
	meta := start.Metadata
	for v := from; v <= to; v++ {
		c, err := t.readCommit(l, v)
		if err != nil {
			return nil, fmt.Errorf("change data for version %d: %w", v, err)
		}
		if c.Metadata != nil {
			meta = *c.Metadata
		}
		if keep != nil && !keep(v) {
			continue
		}
		if !meta.ChangeDataFeed() {
			return nil, fmt.Errorf("%w at version %d (delta.enableChangeDataFeed is not true)", ErrChangeDataNotEnabled, v)
		}
		emit := func(typ string) func(Row, string) error {
			return func(r Row, ct string) error {
				if typ != "" {
					ct = typ
				}
				return fn(Change{Row: r, ChangeType: ct, Version: v, Timestamp: c.Timestamp})
			}
		}
		if len(c.CDCs) > 0 {
			for _, f := range c.CDCs {
				if err := t.readDataFile(ctx, schema, parts, f.Path, f.PartitionValues, true, emit("")); err != nil {
					return nil, err
				}
			}
			continue
		}
		for _, f := range c.Adds {
			if !f.DataChange {
				continue
			}
			if len(f.DeletionVector) > 0 && string(f.DeletionVector) != "null" {
				return nil, fmt.Errorf("%w: deletion vector on %s", ErrUnsupported, f.Path)
			}
			if err := t.readDataFile(ctx, schema, parts, f.Path, f.PartitionValues, false, emit("insert")); err != nil {
				return nil, err
			}
		}
		for _, f := range c.Removes {
			if !f.DataChange {
				continue
			}
			if len(f.DeletionVector) > 0 && string(f.DeletionVector) != "null" {
				return nil, fmt.Errorf("%w: deletion vector on %s", ErrUnsupported, f.Path)
			}
			if err := t.readDataFile(ctx, schema, parts, f.Path, f.PartitionValues, false, emit("delete")); err != nil {
				return nil, err
			}
		}
	}
	return schema, nil
}

// Commit reads one commit of the table.
func (t *Table) Commit(version int64) (*Commit, error) {
	l, err := t.list()
	if err != nil {
		return nil, err
	}
	return t.readCommit(l, version)
}
