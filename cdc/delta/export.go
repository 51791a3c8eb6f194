package delta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/upicdc/upicdc/store"
)

// Export layout and crash safety.
//
// Each store table becomes DIR/<table>/, a Delta table whose version N is
// store version N: protocol (1, 4) and metaData with change data feed on from
// version 0; per version, copy-on-write data files (only the files holding
// changed keys are rewritten), one _change_data file with the version's
// change rows exactly as the store's feed has them, the aggregated table's
// txn action, and commitInfo. A version's files are written and synced
// first; the commit JSON is created last, put-if-absent (link of a synced
// temporary file), with its mtime set to the commit timestamp. A crash
// therefore leaves the table at its last complete version plus unreferenced
// files, and the next export continues from that version. Which file holds
// which key is not kept anywhere: it is rebuilt from the table itself (the
// live files' key column) when an export starts, so there is no sidecar that
// could disagree with the log.

// Defaults of [Options].
const (
	DefaultTargetFileRows     = 250_000
	DefaultCheckpointInterval = 10
	// tombstoneRetention is delta.deletedFileRetentionDuration's default:
	// checkpoints keep remove actions this long.
	tombstoneRetention = 7 * 24 * time.Hour
	// maxSmallFiles bounds the files under half the target size; past it a
	// version's rewrite also packs them together.
	maxSmallFiles = 16
)

// Options configures [Export].
type Options struct {
	// Tables to export; default both.
	Tables []store.Table
	// TargetFileRows is the most rows a data file gets (the target file size).
	TargetFileRows int
	// CheckpointInterval writes a checkpoint every this many versions.
	CheckpointInterval int64
	// Logger receives progress; default discard.
	Logger *slog.Logger
	// Progress, if set, is called after each exported version.
	Progress func(p Progress)
}

// Progress reports one exported version.
type Progress struct {
	Table   store.Table
	Version int64
	Latest  int64
}

// Result says what an export of one table did.
type Result struct {
	Table store.Table
	Dir   string
	// From..To are the versions written; From > To when nothing was new.
	From, To    int64
	ChangeRows  int64 // change feed rows written
	FilesAdded  int
	RowsWritten int64 // data rows written, including copy-on-write rewrites
}

// Export writes every store version not yet in DIR/<table> as Delta commits.
func Export(ctx context.Context, db *store.DB, dir string, opts Options) ([]Result, error) {
	if opts.TargetFileRows <= 0 {
		opts.TargetFileRows = DefaultTargetFileRows
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tables := opts.Tables
	if len(tables) == 0 {
		tables = store.Tables()
	}
	var out []Result
	for _, t := range tables {
		var res Result
		var err error
		switch t {
		case store.RawTable:
			res, err = exportTable(ctx, db, dir, opts, rawSpec())
		case store.AggTable:
			res, err = exportTable(ctx, db, dir, opts, aggSpec())
		default:
			err = fmt.Errorf("%w %q", store.ErrUnknownTable, t)
		}
		if err != nil {
			return out, fmt.Errorf("export %s: %w", t, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// tableSpec is what differs between the two tables: record types, key,
// schema and where the change rows come from.
type tableSpec[R, C any] struct {
	table     store.Table
	schema    string
	key       func(*R) string
	keyColumn string
	changes   func(ctx context.Context, db *store.DB, v int64, fn func(store.ChangeType, R) error) error
	toCDC     func(R, string) C
	stats     func([]R) string
}

func rawSpec() tableSpec[rawRecord, rawChange] {
	return tableSpec[rawRecord, rawChange]{
		table:     store.RawTable,
		schema:    rawSchema,
		key:       func(r *rawRecord) string { return r.TransactionID },
		keyColumn: "transaction_id",
		changes: func(ctx context.Context, db *store.DB, v int64, fn func(store.ChangeType, rawRecord) error) error {
			return db.Changes(ctx, v, v, func(c store.Change) error { return fn(c.Type, rawRecordOf(c.Row)) })
		},
		toCDC: func(r rawRecord, ct string) rawChange {
			return rawChange{rawRecord: r, ChangeType: ct}
		},
		stats: rawStats,
	}
}

func aggSpec() tableSpec[aggRecord, aggChange] {
	return tableSpec[aggRecord, aggChange]{
		table:     store.AggTable,
		schema:    aggSchema,
		key:       func(r *aggRecord) string { return r.MerchantID },
		keyColumn: "merchant_id",
		changes: func(ctx context.Context, db *store.DB, v int64, fn func(store.ChangeType, aggRecord) error) error {
			return db.AggChanges(ctx, v, v, func(c store.AggChange) error { return fn(c.Type, aggRecordOf(c.Agg)) })
		},
		toCDC: func(r aggRecord, ct string) aggChange {
			return aggChange{aggRecord: r, ChangeType: ct}
		},
		stats: aggStats,
	}
}

// liveFile is a data file of the exported table's current version.
type liveFile struct {
	add  AddFile
	rows int
}

// exporter carries one table's state between versions of one export run.
type exporter[R, C any] struct {
	spec  tableSpec[R, C]
	db    *store.DB
	dir   string
	opts  Options
	files map[string]*liveFile // by path
	index map[string]*liveFile // key → file holding it
	tombs []RemoveFile
	txns  map[string]Txn
	meta  Metadata
	proto Protocol
	res   Result
}

func exportTable[R, C any](ctx context.Context, db *store.DB, root string, opts Options, spec tableSpec[R, C]) (Result, error) {
	e := &exporter[R, C]{spec: spec, db: db, dir: filepath.Join(root, string(spec.table)), opts: opts,
		files: map[string]*liveFile{}, index: map[string]*liveFile{}, txns: map[string]Txn{}}
	e.res = Result{Table: spec.table, Dir: e.dir}
	latest, err := db.LatestVersion(spec.table)
	if err != nil {
		return e.res, err
	}
	next, err := e.resume(ctx, latest)
	if err != nil {
		return e.res, err
	}
	e.res.From, e.res.To = next, next-1
	if next > latest+1 {
		return e.res, fmt.Errorf("%w: %s is at version %d but the store's latest is %d (export into an empty directory)",
			ErrNotOurTable, e.dir, next-1, latest)
	}
	for _, d := range []string{filepath.Join(e.dir, "_delta_log"), filepath.Join(e.dir, "_change_data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return e.res, err
		}
	}
	for v := next; v <= latest; v++ {
		if err := ctx.Err(); err != nil {
			return e.res, err
		}
		if err := e.version(ctx, v); err != nil {
			return e.res, fmt.Errorf("version %d: %w", v, err)
		}
		e.res.To = v
		if opts.Progress != nil {
			opts.Progress(Progress{Table: spec.table, Version: v, Latest: latest})
		}
	}
	if e.res.To >= e.res.From {
		opts.Logger.Info("exported", "table", spec.table, "from", e.res.From, "to", e.res.To, "files", e.res.FilesAdded)
	}
	return e.res, nil
}

// resume loads the state of an existing export and returns the next version
// to write (0 for a new table). The key → file index, which costs a read of
// every live file's key column, is built only if there is a version up to
// latest to write: a scheduled export with nothing new reads only the log.
func (e *exporter[R, C]) resume(ctx context.Context, latest int64) (int64, error) {
	if _, err := os.Stat(filepath.Join(e.dir, "_delta_log")); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	t := &Table{dir: e.dir}
	l, err := t.list()
	if err != nil {
		return 0, err
	}
	if l.latest < 0 {
		return 0, nil // a crash before version 0's commit
	}
	if err := foreignCommits(t, l); err != nil {
		return 0, err
	}
	s, err := t.snapshot(l, l.latest)
	if err != nil {
		return 0, err
	}
	if s.Metadata.SchemaString != e.spec.schema {
		return 0, fmt.Errorf("%w: %s has another schema (export into an empty directory)", ErrNotOurTable, e.dir)
	}
	ci, err := e.db.Commit(e.spec.table, s.Version)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is at version %d, which the store does not have: %v", ErrNotOurTable, e.dir, s.Version, err)
	}
	if ci.Timestamp != s.Timestamp {
		return 0, fmt.Errorf("%w: %s version %d was committed at %s, the store's at %s (export into an empty directory)",
			ErrNotOurTable, e.dir, s.Version, rfc3339(s.Timestamp), rfc3339(ci.Timestamp))
	}
	e.meta, e.proto, e.txns, e.tombs = s.Metadata, s.Protocol, s.Txns, s.Tombstones
	for _, a := range s.Files {
		e.files[a.Path] = &liveFile{add: a}
	}
	if v := s.Version; v > 0 && v%e.opts.CheckpointInterval == 0 && s.Checkpoint != v {
		if err := e.checkpoint(v, s.Timestamp); err != nil { // the crash came between commit and checkpoint
			return 0, err
		}
	}
	if s.Version < latest {
		if err := e.indexKeys(ctx); err != nil {
			return 0, err
		}
	}
	return s.Version + 1, nil
}

// engineInfo is what this package writes as commitInfo.engineInfo.
const engineInfo = "upicdc"

// foreignCommits refuses an export directory whose newest commits another
// writer made (Spark's VACUUM START/END, OPTIMIZE, any other writer): the
// export only ever appends the store's versions, as their own Delta
// versions, so it cannot continue after them.
func foreignCommits(t *Table, l *logListing) error {
	var foreign []string
	first := int64(-1)
	for v := l.latest; v >= 0; v-- {
		if _, ok := l.commits[v]; !ok {
			break
		}
		c, err := t.readCommit(l, v)
		if err != nil {
			return err
		}
		if c.CommitInfo != nil && c.CommitInfo.EngineInfo == engineInfo {
			break
		}
		first = v
		op := "no commitInfo"
		if c.CommitInfo != nil {
			op = c.CommitInfo.Operation
		}
		foreign = append([]string{fmt.Sprintf("version %d by %s (%s, %s)", v, writerOf(c), op, rfc3339(c.Timestamp))}, foreign...)
	}
	if first < 0 {
		return nil
	}
	return fmt.Errorf("%w: %s has commits another writer made: %s; upicdc must be the only writer of an export "+
		"directory and will not add versions after them. Export to a fresh directory (--out), or remove %s "+
		"(the table then ends at version %d, its last upicdc commit, again)",
		ErrNotOurTable, t.dir, strings.Join(foreign, ", "), commitFiles(first, l.latest), first-1)
}

// writerOf names the engine that wrote a commit.
func writerOf(c *Commit) string {
	switch {
	case c.CommitInfo == nil:
		return "an unknown writer"
	case c.CommitInfo.EngineInfo != "":
		return c.CommitInfo.EngineInfo
	case c.CommitInfo.ClientVersion != "":
		return c.CommitInfo.ClientVersion
	}
	return "an unknown writer"
}

func commitFiles(from, to int64) string {
	name := func(v int64) string { return filepath.Join("_delta_log", fmt.Sprintf("%020d.json", v)) }
	if from == to {
		return name(from)
	}
	return name(from) + " .. " + name(to)
}

// rfc3339 formats ms since the Unix epoch as RFC 3339 UTC with milliseconds.
func rfc3339(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// indexKeys rebuilds which live file holds which key (and each file's row
// count) from the files' key columns, so no sidecar can disagree with the log.
func (e *exporter[R, C]) indexKeys(ctx context.Context) error {
	for path, lf := range e.files {
		keys, err := e.readKeys(path)
		if err != nil {
			return err
		}
		lf.rows = len(keys)
		for _, k := range keys {
			e.index[k] = lf
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads one of our data files back.
func (e *exporter[R, C]) readFile(path string) ([]R, error) {
	var rows []R
	err := readParquet(filepath.Join(e.dir, filepath.FromSlash(path)), func(pf *parquet.File) error {
		r := parquet.NewGenericReader[R](pf)
		defer r.Close()
		rows = make([]R, pf.NumRows())
		n, err := r.Read(rows)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		rows = rows[:n]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return rows, nil
}

// readKeys reads only the key column of one of our data files: rebuilding
// the key → file map must not decode whole tables.
func (e *exporter[R, C]) readKeys(path string) ([]string, error) {
	var keys []string
	err := readParquet(filepath.Join(e.dir, filepath.FromSlash(path)), func(pf *parquet.File) error {
		leaf, ok := pf.Schema().Lookup(e.spec.keyColumn)
		if !ok {
			return fmt.Errorf("%w: no column %s", ErrNotOurTable, e.spec.keyColumn)
		}
		keys = make([]string, 0, pf.NumRows())
		buf := make([]parquet.Value, 4096)
		for _, rg := range pf.RowGroups() {
			pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
			for {
				p, err := pages.ReadPage()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					pages.Close()
					return err
				}
				vr := p.Values()
				for {
					n, err := vr.ReadValues(buf)
					for _, v := range buf[:n] {
						keys = append(keys, string(v.ByteArray()))
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						pages.Close()
						return err
					}
				}
				parquet.Release(p)
			}
			pages.Close()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return keys, nil
}

// version exports store version v.
func (e *exporter[R, C]) version(ctx context.Context, v int64) error {
	ci, err := e.db.Commit(e.spec.table, v)
	if err != nil {
		return err
	}
	ts := ci.Timestamp
	// The version's change rows in feed order, and each key's final image.
	var feed []C
	type final struct {
		row     R
		deleted bool
	}
	finals := map[string]*final{}
	var order []string // keys in first-seen order
	err = e.spec.changes(ctx, e.db, v, func(t store.ChangeType, r R) error {
		feed = append(feed, e.spec.toCDC(r, t.String()))
		if t == store.UpdatePreimage {
			return nil
		}
		k := e.spec.key(&r)
		f := finals[k]
		if f == nil {
			f = &final{}
			finals[k] = f
			order = append(order, k)
		}
		f.row, f.deleted = r, t == store.Delete
		return nil
	})
	if err != nil {
		return err
	}

	var lines []any
	commitInfo := map[string]any{
		"timestamp":           ts,
		"operation":           ci.Operation,
		"operationParameters": stringMap(ci.OperationParameters),
		"operationMetrics":    metricsMap(ci.OperationMetrics),
		"isolationLevel":      "Serializable",
		"isBlindAppend":       false,
		"engineInfo":          engineInfo,
		"txnId":               newUUID(),
	}
	if v > 0 {
		commitInfo["readVersion"] = v - 1
	}
	lines = append(lines, map[string]any{"commitInfo": commitInfo})
	if v == 0 || e.meta.ID == "" {
		e.proto = Protocol{MinReaderVersion: 1, MinWriterVersion: 4}
		e.meta = Metadata{ID: newUUID(), Format: Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString: e.spec.schema, PartitionColumns: []string{},
			Configuration: map[string]string{"delta.enableChangeDataFeed": "true"}, CreatedTime: &ts}
		lines = append(lines, map[string]any{"protocol": e.proto}, map[string]any{"metaData": e.meta})
	}
	if ci.Txn != nil {
		txn := Txn{AppID: ci.Txn.AppID, Version: ci.Txn.Version, LastUpdated: &ts}
		e.txns[txn.AppID] = txn
		lines = append(lines, map[string]any{"txn": txn})
	}

	// Copy-on-write: the files holding changed keys, plus the small files once
	// there are too many of them, are rewritten without the changed keys; the
	// keys' final images go into the new files.
	rewrite := map[string]*liveFile{}
	for _, k := range order {
		if lf := e.index[k]; lf != nil {
			rewrite[lf.add.Path] = lf
		}
	}
	var small []*liveFile
	for _, lf := range e.files {
		if lf.rows < e.opts.TargetFileRows/2 && rewrite[lf.add.Path] == nil {
			small = append(small, lf)
		}
	}
	if len(small) > maxSmallFiles {
		for _, lf := range small {
			rewrite[lf.add.Path] = lf
		}
	}
	paths := make([]string, 0, len(rewrite))
	for p := range rewrite {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var pending []R
	for _, p := range paths {
		rows, err := e.readFile(p)
		if err != nil {
			return err
		}
		for i := range rows {
			if finals[e.spec.key(&rows[i])] == nil {
				pending = append(pending, rows[i])
			}
		}
	}
	for _, k := range order {
		if f := finals[k]; !f.deleted {
			pending = append(pending, f.row)
		}
	}
	var added []*liveFile
	var addRows [][]R
	for start := 0; start < len(pending); start += e.opts.TargetFileRows {
		chunk := pending[start:min(start+e.opts.TargetFileRows, len(pending))]
		name := fmt.Sprintf("part-%05d-%s-c000.snappy.parquet", len(added), newUUID())
		size, err := writeParquetFile(filepath.Join(e.dir, name), chunk)
		if err != nil {
			return err
		}
		lf := &liveFile{rows: len(chunk), add: AddFile{Path: name, PartitionValues: map[string]*string{}, Size: size,
			ModificationTime: ts, DataChange: true, Stats: e.spec.stats(chunk)}}
		added = append(added, lf)
		addRows = append(addRows, chunk)
		e.res.RowsWritten += int64(len(chunk))
	}
	for _, p := range paths {
		lf := rewrite[p]
		size, ext := lf.add.Size, true
		rm := RemoveFile{Path: p, DeletionTimestamp: &ts, DataChange: true, ExtendedFileMetadata: &ext,
			PartitionValues: map[string]*string{}, Size: &size}
		lines = append(lines, map[string]any{"remove": rm})
	}
	for _, lf := range added {
		lines = append(lines, map[string]any{"add": lf.add})
	}
	if len(feed) > 0 {
		name := fmt.Sprintf("cdc-00000-%s.c000.snappy.parquet", newUUID())
		size, err := writeParquetFile(filepath.Join(e.dir, "_change_data", name), feed)
		if err != nil {
			return err
		}
		lines = append(lines, map[string]any{"cdc": CDCFile{Path: "_change_data/" + name,
			PartitionValues: map[string]*string{}, Size: size, DataChange: false}})
		e.res.ChangeRows += int64(len(feed))
	}
	if err := e.writeCommit(v, ts, lines); err != nil {
		return err
	}

	// The commit is durable: move the in-memory state to version v.
	for _, p := range paths {
		lf := rewrite[p]
		delete(e.files, p)
		size, ext := lf.add.Size, true
		e.tombs = append(e.tombs, RemoveFile{Path: p, DeletionTimestamp: &ts, DataChange: false,
			ExtendedFileMetadata: &ext, PartitionValues: map[string]*string{}, Size: &size})
	}
	for _, k := range order {
		if finals[k].deleted {
			delete(e.index, k)
		}
	}
	for i, lf := range added {
		e.files[lf.add.Path] = lf
		for j := range addRows[i] {
			e.index[e.spec.key(&addRows[i][j])] = lf
		}
	}
	e.res.FilesAdded += len(added)
	if v > 0 && v%e.opts.CheckpointInterval == 0 {
		return e.checkpoint(v, ts)
	}
	return nil
}

func stringMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// metricsMap renders operationMetrics as Delta does: numbers as strings.
func metricsMap(m map[string]int64) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strconv.FormatInt(v, 10)
	}
	return out
}

// writeParquetFile writes rows as a snappy Parquet file, synced, and returns its size.
func writeParquetFile[T any](path string, rows []T) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	w := parquet.NewGenericWriter[T](f, parquet.Compression(&parquet.Snappy), parquet.CreatedBy("upicdc", "", ""))
	if _, err := w.Write(rows); err != nil {
		f.Close()
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		f.Close()
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

// writeCommit creates _delta_log/<v>.json put-if-absent: the actions go to a
// synced temporary file whose mtime is set to the commit timestamp (Spark's
// _commit_timestamp), then a hard link publishes it atomically and fails if
// the commit exists.
func (e *exporter[R, C]) writeCommit(v, ts int64, lines []any) error {
	var buf []byte
	for _, l := range lines {
		data, err := json.Marshal(l)
		if err != nil {
			return err
		}
		buf = append(append(buf, data...), '\n')
	}
	logDir := filepath.Join(e.dir, "_delta_log")
	final := filepath.Join(logDir, fmt.Sprintf("%020d.json", v))
	tmp := filepath.Join(logDir, fmt.Sprintf(".%020d.json.%s.tmp", v, newUUID()))
	if err := writeSynced(tmp, buf); err != nil {
		return err
	}
	defer os.Remove(tmp)
	mt := time.UnixMilli(ts)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		return err
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s already exists (is another export running?)", ErrConflict, final)
		}
		return err
	}
	return syncDir(logDir)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
