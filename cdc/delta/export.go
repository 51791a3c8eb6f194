package delta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// store version N: protocol (1, 4) and metaData (the schema from the table's
// store schema, see records.go; no partition columns) with change data feed
// on from version 0; per version, copy-on-write data files (only the files
// holding changed keys are rewritten), one _change_data file with the
// version's change rows exactly as the store's feed has them, the txn action
// of a derived table's micro-batch commit, and commitInfo. A version's files
// are written and synced first; the commit JSON is created last,
// put-if-absent (link of a synced temporary file), with its mtime set to the
// commit timestamp. A crash therefore leaves the table at its last complete
// version plus unreferenced files, and the next export continues from that
// version. Which file holds which key is not kept anywhere: it is rebuilt
// from the table itself (the live files' key columns) when an export starts,
// so there is no sidecar that could disagree with the log. A key is the
// store's encoding of the key columns, so composite keys (the windows
// table's) need nothing special.

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
	// Tables names the tables to export, in this order; default every
	// table of the store (db.Tables()).
	Tables []string
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
	Table   string
	Version int64
	Latest  int64
}

// Result says what an export of one table did.
type Result struct {
	Table string
	Dir   string
	// From..To are the versions written; From > To when nothing was new.
	From, To    int64
	ChangeRows  int64 // change feed rows written
	FilesAdded  int
	RowsWritten int64 // data rows written, including copy-on-write rewrites
}

// Export writes every store version not yet in DIR/<table> as Delta
// commits, for each table of the store (or of opts.Tables). The layout of
// each comes from the table's schema, so every derived table exports.
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
	var tables []store.TableInfo
	if len(opts.Tables) == 0 {
		tables = db.Tables()
	}
	for _, name := range opts.Tables {
		// Every name is checked before anything is written.
		t, err := db.Table(name)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		tables = append(tables, t)
	}
	var out []Result
	for _, t := range tables {
		res, err := exportTable(ctx, db, dir, opts, t)
		if err != nil {
			return out, fmt.Errorf("export %s: %w", t.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// liveFile is a data file of the exported table's current version.
type liveFile struct {
	add  AddFile
	rows int
}

// exporter carries one table's state between versions of one export run.
type exporter struct {
	table  string
	layout *layout
	db     *store.DB
	dir    string
	opts   Options
	files  map[string]*liveFile // by path
	index  map[string]*liveFile // encoded key → file holding it
	tombs  []RemoveFile
	txns   map[string]Txn
	meta   Metadata
	proto  Protocol
	res    Result
	keyBuf []byte
}

func newExporter(db *store.DB, root string, opts Options, t store.TableInfo) (*exporter, error) {
	l, err := newLayout(t.Schema)
	if err != nil {
		return nil, err
	}
	e := &exporter{table: t.Name, layout: l, db: db, dir: filepath.Join(root, t.Name), opts: opts,
		files: map[string]*liveFile{}, index: map[string]*liveFile{}, txns: map[string]Txn{}}
	e.res = Result{Table: t.Name, Dir: e.dir}
	return e, nil
}

func exportTable(ctx context.Context, db *store.DB, root string, opts Options, t store.TableInfo) (Result, error) {
	e, err := newExporter(db, root, opts, t)
	if err != nil {
		return Result{Table: t.Name}, err
	}
	latest, err := db.LatestVersion(e.table)
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
			opts.Progress(Progress{Table: e.table, Version: v, Latest: latest})
		}
	}
	if e.res.To >= e.res.From {
		opts.Logger.Info("exported", "table", e.table, "from", e.res.From, "to", e.res.To, "files", e.res.FilesAdded)
	}
	return e.res, nil
}

// resume loads the state of an existing export and returns the next version
// to write (0 for a new table). The key → file index, which costs a read of
// every live file's key columns, is built only if there is a version up to
// latest to write: a scheduled export with nothing new reads only the log.
func (e *exporter) resume(ctx context.Context, latest int64) (int64, error) {
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
	if s.Metadata.SchemaString != e.layout.schemaString {
		return 0, fmt.Errorf("%w: %s has the columns (%s), the store's table (%s) (export into an empty directory)",
			ErrNotOurTable, e.dir, columnList(s.Schema), columnList(e.layout.deltaSchema))
	}
	ci, err := e.db.Commit(e.table, s.Version)
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
func (e *exporter) indexKeys(ctx context.Context) error {
	for path, lf := range e.files {
		var keys []string
		err := readParquet(filepath.Join(e.dir, filepath.FromSlash(path)), func(pf *parquet.File) error {
			var err error
			keys, err = e.layout.readKeys(pf)
			return err
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
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
func (e *exporter) readFile(path string) ([]store.Row, error) {
	var rows []store.Row
	err := readParquet(filepath.Join(e.dir, filepath.FromSlash(path)), func(pf *parquet.File) error {
		var err error
		rows, err = e.layout.readRows(pf)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return rows, nil
}

// version exports store version v.
func (e *exporter) version(ctx context.Context, v int64) error {
	ci, err := e.db.Commit(e.table, v)
	if err != nil {
		return err
	}
	ts := ci.Timestamp
	// The version's change rows in feed order, and each key's final image.
	var feed []store.Change
	type final struct {
		row     store.Row
		deleted bool
	}
	finals := map[string]*final{}
	var order []string // keys in first-seen order
	err = e.db.Changes(ctx, e.table, v, v, func(c store.Change) error {
		feed = append(feed, c)
		if c.Type == store.UpdatePreimage {
			return nil
		}
		k, err := e.layout.key(&e.keyBuf, c.Row)
		if err != nil {
			return err
		}
		f := finals[k]
		if f == nil {
			f = &final{}
			finals[k] = f
			order = append(order, k)
		}
		f.row, f.deleted = c.Row, c.Type == store.Delete
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
			SchemaString: e.layout.schemaString, PartitionColumns: []string{},
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
	var pending []store.Row
	for _, p := range paths {
		rows, err := e.readFile(p)
		if err != nil {
			return err
		}
		for _, r := range rows {
			k, err := e.layout.key(&e.keyBuf, r)
			if err != nil {
				return err
			}
			if finals[k] == nil {
				pending = append(pending, r)
			}
		}
	}
	for _, k := range order {
		if f := finals[k]; !f.deleted {
			pending = append(pending, f.row)
		}
	}
	var added []*liveFile
	var addRows [][]store.Row
	for start := 0; start < len(pending); start += e.opts.TargetFileRows {
		chunk := pending[start:min(start+e.opts.TargetFileRows, len(pending))]
		name := fmt.Sprintf("part-%05d-%s-c000.snappy.parquet", len(added), newUUID())
		size, err := e.writeData(filepath.Join(e.dir, name), chunk)
		if err != nil {
			return err
		}
		lf := &liveFile{rows: len(chunk), add: AddFile{Path: name, PartitionValues: map[string]*string{}, Size: size,
			ModificationTime: ts, DataChange: true, Stats: e.layout.stats(chunk)}}
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
		size, err := e.writeChanges(filepath.Join(e.dir, "_change_data", name), feed)
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
		for _, r := range addRows[i] {
			k, err := e.layout.key(&e.keyBuf, r)
			if err != nil {
				return err
			}
			e.index[k] = lf
		}
	}
	e.res.FilesAdded += len(added)
	if v > 0 && v%e.opts.CheckpointInterval == 0 {
		return e.checkpoint(v, ts)
	}
	return nil
}

// writeData writes rows as a data file.
func (e *exporter) writeData(path string, rows []store.Row) (int64, error) {
	enc := rowEncoder{l: e.layout}
	return writeRowsFile(path, e.layout.parquetSchema(e.layout.dictColumns(rows), false), len(rows), func(i int, dst parquet.Row) parquet.Row {
		return enc.append(dst, rows[i], "")
	})
}

// writeChanges writes a version's change rows as a change-data file.
func (e *exporter) writeChanges(path string, feed []store.Change) (int64, error) {
	rows := make([]store.Row, len(feed))
	for i := range feed {
		rows[i] = feed[i].Row
	}
	enc := rowEncoder{l: e.layout}
	return writeRowsFile(path, e.layout.parquetSchema(e.layout.dictColumns(rows), true), len(feed), func(i int, dst parquet.Row) parquet.Row {
		return enc.append(dst, feed[i].Row, feed[i].Type.String())
	})
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

// writeParquetFile writes Go values (checkpoint rows) as a snappy Parquet
// file, synced, and returns its size.
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
	return closeParquet(f, w.Close, path)
}

// writeRowsFile writes n rows of schema as a snappy Parquet file, synced,
// and returns its size; row(i, dst) appends row i's values to dst.
func writeRowsFile(path string, schema *parquet.Schema, n int, row func(i int, dst parquet.Row) parquet.Row) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	w := parquet.NewGenericWriter[any](f, schema, parquet.Compression(&parquet.Snappy), parquet.CreatedBy("upicdc", "", ""))
	const batch = 1024
	buf := make([]parquet.Row, 0, batch)
	vals := make(parquet.Row, 0, batch*len(schema.Columns()))
	for i := 0; i < n; {
		buf, vals = buf[:0], vals[:0]
		for ; i < n && len(buf) < batch; i++ {
			start := len(vals)
			vals = row(i, vals)
			buf = append(buf, vals[start:len(vals):len(vals)])
		}
		if _, err := w.WriteRows(buf); err != nil {
			f.Close()
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return closeParquet(f, w.Close, path)
}

// closeParquet closes the Parquet writer, syncs and closes the file and
// returns its size.
func closeParquet(f *os.File, closeWriter func() error, path string) (int64, error) {
	if err := closeWriter(); err != nil {
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
func (e *exporter) writeCommit(v, ts int64, lines []any) error {
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
