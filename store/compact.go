package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Compaction, backups and restores.
//
// bbolt never gives pages back to the file system: a vacuum frees pages
// that later writes reuse, but the file keeps its size. Compact writes a
// compacted copy next to the store (upicdc.db.compact), syncs it, inspects
// it like any file Open meets, and renames it over the store, then syncs
// the directory. A crash before the rename leaves the old file (and a
// leftover copy, removed by the next compaction); after it, the new file,
// complete. The whole time the store's exclusive lock is held, so no other
// upicdc process can use the file meanwhile.
//
// A backup is bbolt's Tx.WriteTo: every page as one read transaction sees
// it, so it is consistent while writers go on. A restore copies a backup
// into a data directory without a store, inspects it and renames it in.

// CompactStep names a point of Compact, for CompactOptions.Hook.
type CompactStep string

// The points a compaction passes; tests kill the process at each.
const (
	CompactCopied  CompactStep = "copied"  // the copy is written, not synced
	CompactSynced  CompactStep = "synced"  // the copy is synced and closed
	CompactChecked CompactStep = "checked" // the copy passed the inspection
	CompactRenamed CompactStep = "renamed" // the copy replaced the store, directory not synced yet
)

// CompactOptions configures Compact.
type CompactOptions struct {
	// Timeout is how long to wait for another process's lock (default 1s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Hook, if set, is called at each step; an error stops the compaction
	// there (the store is left as it was, or compacted after CompactRenamed).
	Hook func(CompactStep) error
	// Wait (CompactOnline) is how long to wait, at each of its two pauses,
	// for the transactions already running to end (default 10s); then the
	// compaction is skipped with a *BusyError.
	Wait time.Duration
}

// CompactResult is what Compact did.
type CompactResult struct {
	Before, After int64 // file sizes
	Took          time.Duration
	// An online compaction's pauses (CompactOnline): how long new write
	// transactions waited (the copy and the swap), and how long every
	// transaction did (the swap alone). Both include the wait for
	// transactions already running to end.
	WritersPaused, Paused time.Duration
}

const compactSuffix = ".compact"

// Compact rewrites the store in dataDir without its free pages (see the
// comment above). The store must not be open, in this process or another.
func Compact(dataDir string, opts CompactOptions) (CompactResult, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hook := func(s CompactStep) error {
		if opts.Hook == nil {
			return nil
		}
		return opts.Hook(s)
	}
	start := time.Now()
	path := filepath.Join(dataDir, FileName)
	tmp := path + compactSuffix
	var res CompactResult
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("compact %s: %w", path, ErrNoStore)
	} else if err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	res.Before = fi.Size()
	// Inspect first (a damaged file is not copied), then hold the
	// exclusive lock to the end.
	if bdb, err := openInspected(path, Options{Timeout: opts.Timeout, Logger: opts.Logger}); err != nil {
		return res, err
	} else if err := bdb.Close(); err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	src, err := openBolt(path, Options{Timeout: opts.Timeout, Logger: opts.Logger}, false)
	if err != nil {
		return res, err
	}
	defer func() { _ = src.Close() }()
	if err := removeLeftover(tmp); err != nil {
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := checkSpace(dataDir, res.Before-int64(src.Stats().FreeAlloc)); err != nil {
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	fail := func(err error) (CompactResult, error) {
		_ = os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := writeCopy(src, path, opts.Logger, hook); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := hook(CompactRenamed); err != nil {
		return res, err
	}
	if err := syncDir(dataDir); err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	res.Took = time.Since(start)
	opts.Logger.Info("store compacted", "path", path, "before", res.Before, "after", res.After, "took", res.Took)
	return res, nil
}

// removeLeftover removes the copy a compaction that did not finish left
// at tmp: it takes room the space check counts, and bbolt would open it
// rather than start afresh.
func removeLeftover(tmp string) error {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove a leftover copy: %w", err)
	}
	return nil
}

// writeCopy writes the compacted copy of src to path+compactSuffix (the
// caller has removed any leftover, see removeLeftover), syncs and closes it
// and inspects it, calling hook at each step. On error the copy may be
// left behind: the caller removes it.
func writeCopy(src *bolt.DB, path string, log *slog.Logger, hook func(CompactStep) error) error {
	tmp := path + compactSuffix
	// The copy carries its freelist, as every store does (see openBolt),
	// and is grown only by what it needs: it is written once.
	dst, err := bolt.Open(tmp, 0o640, &bolt.Options{Timeout: time.Second, PageSize: src.Info().PageSize,
		InitialMmapSize: initialMmap(), FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("create the copy: %w", err)
	}
	dst.AllocSize = dst.Info().PageSize
	if err := (guardedBolt{path: path, log: log}).guard(func() error { return bolt.Compact(dst, src, 64<<20) }); err != nil {
		_ = dst.Close()
		return err
	}
	if err := hook(CompactCopied); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := hook(CompactSynced); err != nil {
		return err
	}
	if r, err := inspectFile(tmp, true); err != nil {
		return err
	} else if r.empty || r.validMeta == 0 || r.truncated || len(r.problems) > 0 {
		return r.damaged(tmp)
	}
	return hook(CompactChecked)
}

// NoSpaceError means the file system lacks the room for a compacted copy.
type NoSpaceError struct {
	Dir         string
	Need, Avail int64
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("not enough free disk space in %s for the compacted copy: it needs about %d bytes (the store's pages in use), %d are free", e.Dir, e.Need, e.Avail)
}

// checkSpace refuses a compaction whose copy (about need bytes: the pages
// in use) does not fit in dir's file system, with a 5% margin.
func checkSpace(dir string, need int64) error {
	avail, ok := freeSpace(dir)
	if !ok {
		return nil
	}
	if want := need + need/20; avail < want {
		return &NoSpaceError{Dir: dir, Need: want, Avail: avail}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Backup writes a consistent copy of the whole store file to w (one read
// transaction: writers go on meanwhile) and returns its size. size, if
// set, is told the copy's size before it is written.
func (db *DB) Backup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		if size != nil {
			size(tx.Size())
		}
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// ErrStoreExists means a restore found a store in the data directory.
var ErrStoreExists = errors.New("the data directory already has a store (restore only into a data directory without one)")

// Restore copies the backup read from r into dataDir, which must not hold
// a store yet: written beside it, synced, inspected like any file Open
// meets, then renamed into place. A damaged backup is refused with a
// *DamagedError and leaves nothing behind.
func Restore(dataDir string, r io.Reader) (int64, error) {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); err == nil {
		return 0, fmt.Errorf("restore into %s: %w", dataDir, ErrStoreExists)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return 0, fmt.Errorf("restore: create data dir: %w", err)
	}
	tmp := path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	fail := func(err error) (int64, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		return fail(fmt.Errorf("restore: copy the backup: %w", err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("restore: %w", err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("restore: %w", err))
	}
	rep, err := inspectFile(tmp, true)
	if err == nil && (rep.empty || rep.validMeta == 0 || rep.truncated || len(rep.problems) > 0) {
		err = rep.damaged(tmp)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore: the backup is not a good store file: %w", err)
	}
	if _, err := os.Stat(path); err == nil { // a store appeared meanwhile
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore into %s: %w", dataDir, ErrStoreExists)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return n, fmt.Errorf("restore: %w", err)
	}
	return n, nil
}

// Inspect checks a store file that is not open (a backup, say) the way
// Open does: it returns a *DamagedError for a file that is empty, cut
// short or damaged.
func Inspect(path string) error {
	r, err := inspectFile(path, true)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if r.empty || r.validMeta == 0 || r.truncated || len(r.problems) > 0 {
		return r.damaged(path)
	}
	return nil
}

// Space is the store file's size and the part of it bbolt holds as free
// pages: space a vacuum freed, which later writes reuse and only a
// compaction gives back to the file system.
type Space struct {
	File, Free int64
}

// Space reports the file's size and its free pages' bytes.
func (db *DB) Space() (Space, error) {
	st, err := os.Stat(db.path)
	if err != nil {
		return Space{}, fmt.Errorf("store space: %w", err)
	}
	return Space{File: st.Size(), Free: int64(db.bolt.Stats().FreeAlloc)}, nil
}
