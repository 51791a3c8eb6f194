package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the bbolt file's name inside the data directory.
const FileName = "upicdc.db"

// formatVersion 2: every table is generic (rows encoded by the schema the
// table keeps in its meta bucket). 3: change records and rows values in
// their compact forms (see chunks.go), which a format-2 binary would misread
// as damage. 4: a table's current images may sit in runs beside its rows
// tree (see runs.go), which a format-3 binary would not see. This binary
// reads all three; it marks an older store 4 when it opens it for writing,
// since what it writes then may be format 4.
const formatVersion = "4"

// formatsRead are the formats this binary reads.
func formatsRead() []string { return []string{"2", "3", formatVersion} }

var (
	bucketMeta    = []byte("meta")
	bucketTables  = []byte("tables")
	bucketFiles   = []byte("files")
	bucketStreams = []byte("streams")

	subMeta  = []byte("meta")
	subLog   = []byte("log")
	subRows  = []byte("rows")
	subTimes = []byte("times")
	subCDF   = []byte("cdf")
	subNotes = []byte("notes")

	subCheckpoint = []byte("checkpoint")
	subState      = []byte("state")

	keyFormat  = []byte("format")
	keySchemas = []byte("schemas")
	keyProps   = []byte("properties")
	keyDef     = []byte("def")
)

// Options configures Open.
type Options struct {
	// Timeout is how long Open waits for another process's file lock
	// (default 1s). Then it fails with ErrLocked instead of hanging.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and never writes; the file
	// must exist.
	ReadOnly bool
	// Tables declares the tables the caller works with. A writable open
	// creates those the file lacks (version 0, CREATE TABLE) and records a
	// changed schema as the table's new schema. Tables the file has but
	// Tables omits stay readable. A read-only open may leave it empty: the
	// file knows its tables.
	Tables []TableDef
	// Now is the clock for commit timestamps (default time.Now).
	Now func() time.Time
	// Logger receives store events (default: discard).
	Logger *slog.Logger
	// RunMinKeys is the size of a table's rows tree, in keys, from which
	// its commits write runs (see runs.go); 0 means DefaultRunMinKeys and
	// a negative value never.
	RunMinKeys int64
}

// DB is an open store.
type DB struct {
	bolt     guardedBolt
	readOnly bool
	path     string
	now      func() time.Time
	log      *slog.Logger
	tables   map[string]*table
	order    []string
	// runs is when commits write runs and runs are swept (runs.go).
	runs runPolicy
}

// Open opens (creating if needed, unless read-only) the store in dataDir.
// A table the file lacks gets version 0 (CREATE TABLE).
//
// An existing file is inspected before use (see check.go): a file that is
// empty, cut short or damaged is refused with a *DamagedError, and nothing
// is written to it.
func Open(dataDir string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dataDir, FileName)
	_, statErr := os.Stat(path)
	exists := statErr == nil
	if opts.ReadOnly && errors.Is(statErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrNoStore)
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("open store: create data dir: %w", err)
		}
	}
	if !exists && !opts.ReadOnly {
		if err := create(dataDir, path, opts); err != nil {
			return nil, err
		}
	}
	var bdb *bolt.DB
	if exists {
		// Inspect under bbolt's shared lock, so that a writer in another
		// process is never caught half way; a writer opens again below.
		var err error
		if bdb, err = openInspected(path, opts); err != nil {
			return nil, err
		}
		if !opts.ReadOnly {
			if err := bdb.Close(); err != nil {
				return nil, fmt.Errorf("open store %s: %w", path, err)
			}
			bdb = nil
		}
	}
	if bdb == nil {
		var err error
		if bdb, err = openBolt(path, opts, opts.ReadOnly); err != nil {
			return nil, err
		}
	}
	db := &DB{bolt: guardedBolt{gate: newGate(bdb), path: path, log: opts.Logger}, readOnly: opts.ReadOnly, path: path, now: opts.Now, log: opts.Logger,
		runs: defaultRunPolicy(opts.RunMinKeys)}
	var err error
	if opts.ReadOnly {
		err = db.checkFormat()
	} else {
		err = db.init(opts.Tables)
	}
	if err == nil {
		err = db.loadTables(opts.Tables)
	}
	if err != nil {
		_ = bdb.Close()
		var damaged *DamagedError
		if errors.As(err, &damaged) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// openInspected opens an existing file read-only and inspects it, in two
// steps: the meta pages and the size before bbolt maps the file (bbolt reads
// both meta pages from the map, which faults past the end of a file cut
// short), and the whole page tree once bbolt holds the file's shared lock.
// The first step reads without the lock, so it refuses only what no writer
// ever leaves behind: an empty file, no valid meta page, a file shorter than
// its valid meta pages say. A torn read of the meta page a writer is writing
// just now is not one of those: the other meta page is valid.
func openInspected(path string, opts Options) (*bolt.DB, error) {
	r, err := inspectFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if r.empty || r.validMeta == 0 || r.truncated {
		return nil, r.damaged(path)
	}
	bdb, err := openBolt(path, opts, true)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if r, err = inspectFile(path, true); err == nil && len(r.problems) > 0 {
		err = r.damaged(path)
	}
	if err != nil {
		_ = bdb.Close()
		var damaged *DamagedError
		if errors.As(err, &damaged) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	opts.Logger.Debug("store file inspected", "path", path, "pages", r.hwm, "page_size", r.pageSize, "took", time.Since(start))
	return bdb, nil
}

// create makes a new, empty bbolt file at path, whole or not at all: bbolt
// initialises a file at a temporary name, which is then linked to path. A
// crash half way leaves the temporary file, not an empty store file that
// the next open would refuse as damaged; link, unlike rename, never
// replaces a store another process created meanwhile.
func create(dataDir, path string, opts Options) error {
	f, err := os.CreateTemp(dataDir, FileName+".new-*")
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o640) // as bbolt creates a file
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	bdb, err := openBolt(tmp, opts, false)
	if err != nil {
		return err
	}
	if err := bdb.Close(); err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	if err := syncDir(dataDir); err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	return nil
}

// initialMmap is the size bbolt maps a file with (see openBolt), and
// allocSize the slack it grows the file by: with a mapping larger than
// bbolt's default 16 MiB slack, even a small store would be a 16 MiB file.
// Mapping with room to spare also spares a write transaction that grows
// the file the remap's copy of every node it touched into the heap (240 MB
// at the commit of a 1M-row MERGE into a new store, measured). Windows
// grows the file to the mapping's size: there bbolt maps as it likes.
const allocSize = 1 << 20

func initialMmap() int {
	if runtime.GOOS == "windows" {
		return 0
	}
	return 1 << 30
}

// openBolt opens the bbolt file. A write open of a file written without a
// freelist (by an earlier release) makes bbolt walk every page once to
// rebuild it: after the inspection it cannot meet a bad page, but if it
// did, its panic comes back as an error, and the file handle bbolt opened
// stays open until the process exits.
func openBolt(path string, opts Options, readOnly bool) (*bolt.DB, error) {
	var bdb *bolt.DB
	err := guardedBolt{path: path, log: opts.Logger}.guard(func() error {
		var err error
		bdb, err = bolt.Open(path, 0o640, &bolt.Options{
			Timeout: opts.Timeout,
			// A MERGE of random transaction ids dirties most leaf pages of the
			// rows tree; 8 KiB pages halve the pages to split and write per
			// commit (measured: ~15% more rows/s than 4 KiB on 100k-row files).
			// Only a new file takes it; an existing file keeps its page size.
			PageSize: 8192,
			ReadOnly: readOnly,
			// The freelist is written with every commit (a few hundred KB
			// at most, beside the pages a commit writes) rather than
			// rebuilt at each open: the rebuild reads every page of the
			// mapped file, which cost a second per GB and put the whole
			// file in the resident set of every `ingest` and `process`.
			NoFreelistSync: false,
			// A commit that outgrows the mapping remaps the file, and a
			// remap waits for every open read transaction: readers would
			// then block the writer. Mapping 1 GiB from the start (address
			// space, not memory) makes that rare: bbolt then grows the
			// mapping in 1 GiB steps.
			InitialMmapSize: initialMmap(),
			FreelistType:    bolt.FreelistMapType,
		})
		if err == nil {
			bdb.AllocSize = allocSize
		}
		return err
	})
	if err != nil {
		var damaged *DamagedError
		switch {
		case errors.As(err, &damaged):
			return nil, err
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// A file an earlier release wrote has no freelist: this open rebuilt
	// it by reading every page through the mapping. Hand those pages back
	// (the next commit writes the freelist, so it happens once).
	_ = bdb.View(func(tx *bolt.Tx) error {
		releaseMapped(tx)
		return nil
	})
	return bdb, nil
}

// Path returns the bbolt file's path.
func (db *DB) Path() string { return db.path }

// Close closes the file.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

func checkFormatBucket(m *bolt.Bucket) error {
	if m == nil {
		return fmt.Errorf("%w: not initialised", ErrFormat)
	}
	if f := string(m.Get(keyFormat)); !slices.Contains(formatsRead(), f) {
		return fmt.Errorf("%w %q (this binary reads %s)", ErrFormat, f, strings.Join(formatsRead(), ", "))
	}
	return nil
}

func (db *DB) checkFormat() error {
	return db.bolt.View(func(tx *bolt.Tx) error { return checkFormatBucket(tx.Bucket(bucketMeta)) })
}

// init creates the store's buckets once, then every declared table the file
// lacks, and records changed schemas.
func (db *DB) init(defs []TableDef) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if f := m.Get(keyFormat); f != nil {
			if err := checkFormatBucket(m); err != nil {
				return err
			}
		}
		if f := m.Get(keyFormat); string(f) != formatVersion {
			if err := m.Put(keyFormat, []byte(formatVersion)); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketFiles, bucketStreams, bucketTables} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		created := db.now().UnixMilli() // tables created together share their creation time
		for _, def := range defs {
			if err := db.ensureTable(tx, def, created); err != nil {
				return fmt.Errorf("table %s: %w", def.Name, err)
			}
		}
		return nil
	})
}

// tableBucket returns a table's bucket inside tx.
func tableBucket(tx *bolt.Tx, t string) (*bolt.Bucket, error) {
	tables := tx.Bucket(bucketTables)
	if tables == nil {
		return nil, fmt.Errorf("%w: no tables bucket", ErrCorrupt)
	}
	b := tables.Bucket([]byte(t))
	if b == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, t)
	}
	return b, nil
}

func putCommit(tb *bolt.Bucket, ci CommitInfo) error {
	data, err := json.Marshal(ci)
	if err != nil {
		return fmt.Errorf("encode commit %d: %w", ci.Version, err)
	}
	lb := tb.Bucket(subLog)
	lb.FillPercent = 1.0 // append-only
	if err := lb.Put(be64(ci.Version), data); err != nil {
		return err
	}
	// Commit timestamps alone, so change-feed readers need not decode JSON.
	times := tb.Bucket(subTimes)
	times.FillPercent = 1.0
	return times.Put(be64(ci.Version), be64(ci.Timestamp))
}

// lastCommit returns the newest commit of a table bucket.
func lastCommit(tb *bolt.Bucket) (CommitInfo, error) {
	k, v := tb.Bucket(subLog).Cursor().Last()
	if k == nil {
		return CommitInfo{}, fmt.Errorf("%w: empty commit log", ErrCorrupt)
	}
	return decodeCommit(v)
}

func getCommit(tb *bolt.Bucket, version int64) (CommitInfo, error) {
	v := tb.Bucket(subLog).Get(be64(version))
	if v == nil {
		return CommitInfo{}, fmt.Errorf("version %d: %w", version, ErrVersionNotFound)
	}
	return decodeCommit(v)
}

func decodeCommit(v []byte) (CommitInfo, error) {
	var ci CommitInfo
	if err := json.NewDecoder(bytes.NewReader(v)).Decode(&ci); err != nil {
		return ci, fmt.Errorf("%w: commit info: %v", ErrCorrupt, err)
	}
	return ci, nil
}

// nextTimestamp returns a commit timestamp strictly after prev: commit
// timestamps must increase with versions for time travel to be well defined.
func (db *DB) nextTimestamp(prev int64) int64 {
	ts := db.now().UnixMilli()
	if ts <= prev {
		ts = prev + 1
	}
	return ts
}

// LatestVersion returns a table's newest version.
func (db *DB) LatestVersion(name string) (int64, error) {
	var v int64
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		k, _ := tb.Bucket(subLog).Cursor().Last()
		if k == nil {
			return fmt.Errorf("%w: %s has no commits", ErrCorrupt, name)
		}
		v = int64(beUint(k))
		return nil
	})
	return v, err
}

// History returns a table's commits, oldest first.
func (db *DB) History(name string) ([]CommitInfo, error) {
	var out []CommitInfo
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		var err error
		out, err = history(tb)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", name, err)
	}
	return out, nil
}

// history decodes a table bucket's commit log, oldest first.
func history(tb *bolt.Bucket) ([]CommitInfo, error) {
	var out []CommitInfo
	err := tb.Bucket(subLog).ForEach(func(_, v []byte) error {
		ci, err := decodeCommit(v)
		if err != nil {
			return err
		}
		out = append(out, ci)
		return nil
	})
	return out, err
}

// Commit returns one commit of a table.
func (db *DB) Commit(name string, version int64) (CommitInfo, error) {
	var ci CommitInfo
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		var err error
		ci, err = getCommit(tb, version)
		return err
	})
	return ci, err
}

// IngestedFile looks a file's content up in the ledger.
func (db *DB) IngestedFile(sha [32]byte) (FileRecord, bool, error) {
	var rec FileRecord
	var found bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFiles).Get(sha[:])
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &rec)
	})
	return rec, found, err
}

// Check runs bbolt's consistency check over the whole file and returns its
// first finding, wrapping ErrCorrupt.
func (db *DB) Check(ctx context.Context) error {
	problems, err := db.Consistency(ctx)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrCorrupt, problems[0])
	}
	return nil
}

// Consistency runs bbolt's consistency check (tx.Check) over the whole file
// and returns its findings, at most maxProblems of them. bbolt's check
// reads the freelist, which is only safe while no writer runs: on a writable
// store it runs in a write transaction that is rolled back, so it waits its
// turn like a writer; a read-only store has no writer in this process and
// holds a lock that keeps other processes from writing. (bbolt checks in a
// goroutine of its own, which is safe because Open walked the same pages.)
func (db *DB) Consistency(ctx context.Context) ([]string, error) {
	run := db.bolt.Update
	if db.readOnly {
		run = db.bolt.View
	}
	var problems []string
	err := run(func(tx *bolt.Tx) error {
		for err := range tx.Check() { // drain: Check's goroutine sends until done
			if len(problems) < maxProblems {
				problems = append(problems, err.Error())
			}
		}
		return errChecked
	})
	if err != nil && !errors.Is(err, errChecked) {
		return nil, fmt.Errorf("check: %w", err)
	}
	return problems, ctx.Err()
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

func jsonUnmarshal(v []byte, dst any) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// Now is the store's clock (Options.Now): the time commits are stamped
// with. Tables above the store use it for times they record themselves.
func (db *DB) Now() time.Time { return db.now() }
