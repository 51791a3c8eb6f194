package delta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Vacuum and what it keeps.
//
// A vacuum keeps every version committed within the retention, and the
// version that was current at its start (the newest one committed at or
// before now - retain): call it the oldest retained version R. Versions
// R..latest stay readable, as snapshots and as change-feed ranges, by any
// reader; what goes is the files no version in R..latest references.
//
// The failure to avoid (delta-rs issue #3392) is a log that still lists
// versions whose files a vacuum deleted: readers then take the oldest
// listed version as readable and fail on a missing file. So the log is cut
// first, at R: a checkpoint of R is written if there is none, then the
// commits and checkpoints below R are removed (newest first), and only
// then are files deleted. A crash at any point leaves a log whose every
// listed version still has all its files; the next vacuum finishes.
//
// What is kept is read from the log of R..latest: R's live files (its
// snapshot) and every file commits R..latest need (adds, change data, and
// the removes of a commit without change data, which a change-feed reader
// reads as its deletes), which covers every snapshot and every change
// range from R on. A file the removed commits named and no retained
// version does is deleted. A file no commit names at all (left by a crash
// of an export, or being written by one right now) is deleted only once
// its modification time is before the retention's start.

// DefaultVacuumRetain is how long a vacuum keeps versions by default:
// delta.deletedFileRetentionDuration's default.
const DefaultVacuumRetain = 7 * 24 * time.Hour

// VacuumOptions configures [Vacuum].
type VacuumOptions struct {
	// Retain keeps the versions committed within this duration before Now
	// (and the one current at its start). Zero keeps only the latest.
	Retain time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives what was removed; default discard.
	Logger *slog.Logger
}

// VacuumResult says what a vacuum of one table did.
type VacuumResult struct {
	Table string
	Dir   string
	// Oldest is the oldest retained version, Latest the table's latest.
	Oldest, Latest int64
	// FilesRemoved and BytesRemoved count data and change-data files.
	FilesRemoved int
	BytesRemoved int64
	// LogFilesRemoved counts commits and checkpoints below Oldest.
	LogFilesRemoved int
}

// VacuumAll vacuums root/<table> for each of tables that exists.
func VacuumAll(ctx context.Context, root string, tables []string, opts VacuumOptions) ([]VacuumResult, error) {
	var out []VacuumResult
	for _, name := range tables {
		dir := filepath.Join(root, name)
		if _, err := os.Stat(filepath.Join(dir, "_delta_log")); errors.Is(err, fs.ErrNotExist) {
			continue // never exported
		}
		res, err := Vacuum(ctx, dir, opts)
		res.Table = name
		if err != nil {
			return out, fmt.Errorf("vacuum %s: %w", name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// Vacuum removes the files of the Delta table in dir that no version
// within the retention needs (see the comment above).
func Vacuum(ctx context.Context, dir string, opts VacuumOptions) (VacuumResult, error) {
	res := VacuumResult{Table: filepath.Base(dir), Dir: dir, Oldest: -1, Latest: -1}
	if opts.Retain < 0 {
		return res, fmt.Errorf("retention %s: must not be negative", opts.Retain)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cutoff := opts.Now().Add(-opts.Retain).UnixMilli()
	t := &Table{dir: dir}
	l, err := t.list()
	if err != nil {
		return res, err
	}
	if l.latest < 0 {
		return res, nil
	}
	res.Latest = l.latest

	// R: the newest version committed at or before the cutoff, or the
	// oldest listed one if all are newer. Commits are read newest first,
	// collecting what they name, until R.
	keep := map[string]bool{}
	name := func(p string) error {
		local, err := t.filePath(p)
		if err != nil {
			return err
		}
		keep[local] = true
		return nil
	}
	oldest := l.latest
	for v := l.latest; v >= 0; v-- {
		if _, ok := l.commits[v]; !ok {
			break // below a checkpoint whose older commits are gone
		}
		c, err := t.readCommit(l, v)
		if err != nil {
			return res, err
		}
		if err := namedFiles(c, name); err != nil {
			return res, err
		}
		oldest = v
		if c.Timestamp <= cutoff {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	res.Oldest = oldest
	s, err := t.snapshot(l, oldest)
	if err != nil {
		return res, fmt.Errorf("oldest retained version %d: %w", oldest, err)
	}
	for _, f := range s.Files {
		if len(f.DeletionVector) > 0 && string(f.DeletionVector) != "null" {
			return res, fmt.Errorf("%w: deletion vector on %s (vacuum would not know its file)", ErrUnsupported, f.Path)
		}
		if err := name(f.Path); err != nil {
			return res, err
		}
	}

	// What the commits below R name, so their files go whatever their age.
	removable := map[string]bool{}
	var older []int64
	for v := range l.commits {
		if v < oldest {
			older = append(older, v)
		}
	}
	sort.Slice(older, func(i, j int) bool { return older[i] > older[j] })
	for _, v := range older {
		c, err := t.parseCommitFile(l, v)
		if err != nil {
			return res, err
		}
		if err := namedFiles(c, func(p string) error {
			local, err := t.filePath(p)
			if err == nil && !keep[local] {
				removable[local] = true
			}
			return err
		}); err != nil {
			return res, err
		}
	}

	// Cut the log at R: a checkpoint of R first, then what is below it.
	if err := cutLog(t, l, s, oldest, &res); err != nil {
		return res, err
	}

	// The files.
	for _, sub := range []string{"", "_change_data"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.Type().IsRegular() || (sub == "" && (strings.HasPrefix(n, "_") || strings.HasPrefix(n, "."))) {
				continue
			}
			local := filepath.Join(dir, sub, n)
			if keep[local] {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return res, err
			}
			if !removable[local] && info.ModTime().UnixMilli() >= cutoff {
				continue // not in the log (yet): an export may be writing it
			}
			if err := os.Remove(local); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("remove %s: %w", local, err)
			}
			res.FilesRemoved++
			res.BytesRemoved += info.Size()
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
	}
	opts.Logger.Info("vacuumed", "table", res.Table, "oldest_version", res.Oldest, "latest_version", res.Latest,
		"files_removed", res.FilesRemoved, "bytes_removed", res.BytesRemoved, "log_files_removed", res.LogFilesRemoved)
	return res, nil
}

// namedFiles calls fn with every file path a commit needs: its adds, its
// change data files, and its removes if it has no change data files.
func namedFiles(c *Commit, fn func(string) error) error {
	for _, a := range c.Adds {
		if len(a.DeletionVector) > 0 && string(a.DeletionVector) != "null" {
			return fmt.Errorf("%w: deletion vector on %s (vacuum would not know its file)", ErrUnsupported, a.Path)
		}
		if err := fn(a.Path); err != nil {
			return err
		}
	}
	// A commit with change data files is read as a change range through
	// them alone; without, its adds and removes are its changes. (A removed
	// file of a commit after R is live in the version before it anyway.)
	for _, r := range c.Removes {
		if len(c.CDCs) > 0 {
			break
		}
		if err := fn(r.Path); err != nil {
			return err
		}
	}
	for _, f := range c.CDCs {
		if err := fn(f.Path); err != nil {
			return err
		}
	}
	return nil
}

// cutLog makes oldest the oldest version the log lists: a checkpoint of it
// (unless there is one), then the commits and checkpoints below it, newest
// first, so that a crash leaves every listed version readable.
func cutLog(t *Table, l *logListing, s *Snapshot, oldest int64, res *VacuumResult) error {
	var below []checkpoint
	hasCheckpoint := false
	newest := int64(-1)
	for _, cp := range l.checkpoints {
		newest = max(newest, cp.version)
		switch {
		case cp.version == oldest:
			hasCheckpoint = true
		case cp.version < oldest:
			below = append(below, cp)
		}
	}
	hasOlderCommit := false
	for v := range l.commits {
		if v < oldest {
			hasOlderCommit = true
		}
	}
	if !hasOlderCommit && len(below) == 0 {
		return nil
	}
	if !hasCheckpoint && oldest > 0 {
		e := &exporter{dir: t.dir, files: map[string]*liveFile{}, txns: s.Txns, meta: s.Metadata, proto: s.Protocol,
			tombs: s.Tombstones}
		for _, a := range s.Files {
			e.files[a.Path] = &liveFile{add: a}
		}
		if err := e.writeCheckpoint(oldest, s.Timestamp, oldest > newest); err != nil {
			return err
		}
	}
	logDir := t.logDir()
	var names []string
	for v := oldest - 1; v >= 0; v-- {
		if n, ok := l.commits[v]; ok {
			names = append(names, n)
		}
		for _, cp := range below {
			if cp.version == v {
				names = append(names, cp.files...)
			}
		}
		names = append(names, fmt.Sprintf("%020d.crc", v))
	}
	for _, n := range names {
		err := os.Remove(filepath.Join(logDir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("remove %s: %w", n, err)
		}
		if !strings.HasSuffix(n, ".crc") {
			res.LogFilesRemoved++
		}
	}
	return syncDir(logDir)
}
