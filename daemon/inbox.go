package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/upicdc/upicdc/cdc"
)

// Subdirectories of the inbox. They live inside it so that a move is a
// rename on one file system (atomic, never a copy); the scan takes regular
// files only, so they are never read as input.
const (
	ProcessedDir = "processed"
	RejectedDir  = "rejected"
)

// errorSuffix is appended to a rejected file's name for the file that holds
// the reason.
const errorSuffix = ".error"

// ignored reports whether a name in the inbox is not (yet) a batch: writers
// create dotfiles, *.tmp or *.partial and rename them when complete.
func ignored(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".partial")
}

// settle is how long a file written in place (rather than renamed into the
// inbox, as it should be) must go without a write before it is taken.
const settle = time.Second

// inboxFile is a candidate batch file.
type inboxFile struct {
	name    string
	modTime time.Time
	size    int64
}

// scanInbox lists the batch files waiting in dir, oldest first (modification
// time, then name).
func scanInbox(dir string) ([]inboxFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("scan inbox: %w", err)
	}
	var out []inboxFile
	for _, e := range entries {
		if ignored(e.Name()) || e.IsDir() {
			continue
		}
		// Stat follows a symlink, so a link to a batch counts as one.
		info, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !info.Mode().IsRegular() {
			continue // vanished since ReadDir, or a socket, device, dangling link
		}
		out = append(out, inboxFile{name: e.Name(), modTime: info.ModTime(), size: info.Size()})
	}
	slices.SortFunc(out, func(a, b inboxFile) int {
		if c := a.modTime.Compare(b.modTime); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	return out, nil
}

// refused reports whether an ingest error is about the file itself (its
// name or content): such a file goes to rejected/. Anything else (the store,
// the disk, shutdown) leaves the file where it is to be tried again.
func refused(err error) bool {
	var pe *cdc.ParseError
	switch {
	case errors.As(err, &pe),
		errors.Is(err, cdc.ErrUnsupportedFormat), errors.Is(err, cdc.ErrEmptyFile), errors.Is(err, cdc.ErrMalformed),
		errors.Is(err, cdc.ErrUnknownColumn), errors.Is(err, cdc.ErrDuplicateColumn), errors.Is(err, cdc.ErrMissingField),
		errors.Is(err, cdc.ErrFieldCount), errors.Is(err, cdc.ErrWrongType), errors.Is(err, cdc.ErrNotUTF8),
		errors.Is(err, cdc.ErrBadID), errors.Is(err, cdc.ErrBadAmount), errors.Is(err, cdc.ErrBadTime),
		errors.Is(err, cdc.ErrBadStatus), errors.Is(err, cdc.ErrBadOp):
		return true
	case errors.Is(err, fs.ErrPermission):
		return true // unreadable: retrying will not help; say so beside it
	}
	return false
}

// freeName returns name, or name with a "-N" suffix before its extension,
// such that neither it nor it+extra exists in dir.
func freeName(dir, name, extra string) string {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; ; i++ {
		n := name
		if i > 0 {
			n = stem + "-" + strconv.Itoa(i) + ext
		}
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			continue
		}
		if extra != "" {
			if _, err := os.Lstat(filepath.Join(dir, n+extra)); err == nil {
				continue
			}
		}
		return n
	}
}

// inbox takes batch files from a directory: MERGE, then move. The order
// (commit, then move) and the store's sha256 ledger make a crash between the
// two harmless: on restart the file is still in the inbox, MERGE reports it
// as a duplicate without applying anything, and it is moved.
type inbox struct {
	dir   string
	clock Clock
	log   *slog.Logger
	// ingest MERGEs one file; ctx is the daemon's work context (cancelled
	// only when the shutdown timeout runs out).
	ingest func(path string) (cdc.Result, error)
	// merged is called after each file taken (merged, duplicate or empty).
	merged func(cdc.Result)
	// rejected is called after a file was moved to rejected/.
	rejected func(name string, err error)
	// failed is called when a file could not be ingested and stays.
	failed func(name string, err error)
	// pollInterval returns inbox.poll_interval (it changes on reload).
	pollInterval func() time.Duration
	// pollChanged is signalled when poll_interval was reloaded.
	pollChanged <-chan struct{}

	watcher *fsnotify.Watcher
	// written holds when a file last had a write event: it is being
	// written in place, and is taken once quiet for settle. Only the loop's
	// goroutine uses it.
	written map[string]time.Time

	mu      sync.Mutex
	backlog int
	oldest  time.Time // modification time of the oldest waiting file
}

// open creates the inbox's directories and starts watching it.
func (in *inbox) open() error {
	for _, d := range []string{in.dir, filepath.Join(in.dir, ProcessedDir), filepath.Join(in.dir, RejectedDir)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
	}
	// The backlog is known from the start, before the loop takes anything.
	files, err := scanInbox(in.dir)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	in.setState(files)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("inbox: watch %s: %w", in.dir, err)
	}
	if err := w.Add(in.dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("inbox: watch %s: %w", in.dir, err)
	}
	in.watcher = w
	in.written = map[string]time.Time{}
	return nil
}

// close stops watching.
func (in *inbox) close() error {
	if in.watcher == nil {
		return nil
	}
	return in.watcher.Close()
}

// state returns the backlog and the oldest waiting file's modification time.
func (in *inbox) state() (int, time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.backlog, in.oldest
}

func (in *inbox) setState(files []inboxFile) {
	oldest := time.Time{}
	if len(files) > 0 {
		oldest = files[0].modTime
	}
	in.setBacklog(len(files), oldest)
}

func (in *inbox) setBacklog(n int, oldest time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.backlog, in.oldest = n, oldest
}

// loop takes files until ctx is done: at start (files already there), on
// file-system events, and every poll interval as a safety net. A file being
// ingested when ctx ends is finished (committed and moved) first.
func (in *inbox) loop(ctx context.Context) error {
	for {
		retry := in.drain(ctx)
		timer := in.clock.NewTimer(in.pollInterval())
		var settled Timer = stopped{}
		if !retry.IsZero() {
			settled = in.clock.NewTimer(max(0, retry.Sub(in.clock.Now())))
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				settled.Stop()
				return nil
			case ev, ok := <-in.watcher.Events:
				if !ok {
					timer.Stop()
					settled.Stop()
					return nil
				}
				if in.event(ev) {
					break wait
				}
			case err, ok := <-in.watcher.Errors:
				if ok {
					// An overflowed event queue loses events; the rescan
					// right after (and the poll) finds the files anyway.
					in.log.Warn("inbox watcher error; rescanning", "err", err)
				}
				break wait
			case <-in.pollChanged:
				break wait
			case <-timer.C():
				break wait
			case <-settled.C():
				break wait
			}
		}
		timer.Stop()
		settled.Stop()
	}
}

// event records what a file-system event says and reports whether it may
// announce a new file (then the inbox is scanned).
func (in *inbox) event(ev fsnotify.Event) bool {
	name := filepath.Base(ev.Name)
	if filepath.Dir(ev.Name) != filepath.Clean(in.dir) || ignored(name) {
		return false
	}
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		delete(in.written, name) // moved away (by us, usually)
		return false
	case ev.Has(fsnotify.Write):
		in.written[name] = in.clock.Now()
	case !ev.Has(fsnotify.Create | fsnotify.Chmod):
		return false
	}
	in.log.Debug("inbox event", "op", ev.Op.String(), "file", name)
	return true
}

// pump handles the events already queued, without waiting, so that a file
// written in place is known as such before it is taken. It reports whether
// one may announce a new file.
func (in *inbox) pump() bool {
	fresh := false
	for {
		select {
		case ev, ok := <-in.watcher.Events:
			if !ok {
				return fresh
			}
			fresh = in.event(ev) && !ev.Has(fsnotify.Write) || fresh
		default:
			return fresh
		}
	}
}

// writing reports whether f may still be being written, and until when to
// wait: it had a write event less than settle ago, or it is empty and new
// (a writer has just created it).
func (in *inbox) writing(f inboxFile) (time.Time, bool) {
	now := in.clock.Now()
	if at, ok := in.written[f.name]; ok {
		if until := at.Add(settle); now.Before(until) {
			return until, true
		}
		delete(in.written, f.name)
	}
	if until := f.modTime.Add(settle); f.size == 0 && now.Before(until) {
		return until, true
	}
	return time.Time{}, false
}

// drain ingests every waiting file, oldest first, and rescans until the
// inbox is empty, ctx is done or a file fails for a reason that a retry may
// fix (then it waits for the next poll, keeping the order). Files still
// being written are left for later: drain returns when to look again.
func (in *inbox) drain(ctx context.Context) (retry time.Time) {
	for ctx.Err() == nil {
		files, err := scanInbox(in.dir)
		if err != nil {
			in.failed("", err)
			return retry
		}
		in.setState(files)
		retry = time.Time{}
		taken, fresh := 0, false
		var firstDeferred time.Time // files are in age order: the first is the oldest
		for i, f := range files {
			if ctx.Err() != nil {
				return retry
			}
			fresh = in.pump() || fresh
			if until, ok := in.writing(f); ok {
				in.log.Debug("inbox file is being written; waiting for it to settle", "file", f.name)
				if retry.IsZero() || until.Before(retry) {
					retry = until
				}
				if firstDeferred.IsZero() {
					firstDeferred = f.modTime
				}
				continue
			}
			if err := in.take(f.name); err != nil {
				in.failed(f.name, err)
				return retry
			}
			taken++
			oldest := firstDeferred
			if oldest.IsZero() && i+1 < len(files) {
				oldest = files[i+1].modTime
			}
			in.setBacklog(len(files)-taken, oldest)
		}
		if taken == 0 && !fresh {
			return retry
		}
	}
	return retry
}

// take ingests one file and moves it. A nil error means the file left the
// inbox (or vanished).
func (in *inbox) take(name string) error {
	path := filepath.Join(in.dir, name)
	res, err := in.ingest(path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return nil // taken away by someone else
	case refused(err):
		return in.reject(name, err)
	default:
		return err
	}
	dir := filepath.Join(in.dir, ProcessedDir)
	if err := os.MkdirAll(dir, 0o750); err != nil { // an operator may have removed it
		return fmt.Errorf("move %s to %s/: %w", name, ProcessedDir, err)
	}
	dst := freeName(dir, name, "")
	if err := os.Rename(path, filepath.Join(dir, dst)); err != nil {
		return fmt.Errorf("move %s to %s/: %w", name, ProcessedDir, err)
	}
	in.merged(res)
	return nil
}

// reject moves a refused file to rejected/ with NAME.error beside it. The
// .error file is written first (atomically), under the name the file will
// get, so a crash leaves the file in the inbox to be refused again.
func (in *inbox) reject(name string, cause error) error {
	dir := filepath.Join(in.dir, RejectedDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("reject %s: %w", name, err)
	}
	dst := freeName(dir, name, errorSuffix)
	msg := fmt.Sprintf("%s\n", cause.Error())
	tmp := filepath.Join(dir, "."+dst+errorSuffix+".tmp")
	if err := os.WriteFile(tmp, []byte(msg), 0o640); err != nil {
		return fmt.Errorf("reject %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, dst+errorSuffix)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("reject %s: %w", name, err)
	}
	if err := os.Rename(filepath.Join(in.dir, name), filepath.Join(dir, dst)); err != nil {
		return fmt.Errorf("move %s to %s/: %w", name, RejectedDir, err)
	}
	in.rejected(dst, cause)
	return nil
}
