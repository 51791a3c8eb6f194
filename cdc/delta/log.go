package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Table is a Delta table directory opened for reading. It holds no open
// files; every call lists _delta_log afresh, so a Table sees new commits.
type Table struct {
	dir string
}

// Open opens the Delta table at dir.
func Open(dir string) (*Table, error) {
	t := &Table{dir: dir}
	l, err := t.list()
	if err != nil {
		return nil, err
	}
	if len(l.commits) == 0 && len(l.checkpoints) == 0 {
		return nil, fmt.Errorf("%s: %w: no commits in _delta_log", dir, ErrNotDeltaTable)
	}
	return t, nil
}

// Dir returns the table's directory.
func (t *Table) Dir() string { return t.dir }

func (t *Table) logDir() string { return filepath.Join(t.dir, "_delta_log") }

var (
	commitName     = regexp.MustCompile(`^(\d{20})\.json$`)
	checkpointName = regexp.MustCompile(`^(\d{20})\.checkpoint\.parquet$`)
	multipartName  = regexp.MustCompile(`^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$`)
	// v2Name is a UUID-named V2 checkpoint (Parquet or JSON top-level file).
	v2Name = regexp.MustCompile(`^(\d{20})\.checkpoint\.([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.(parquet|json)$`)
)

// checkpoint is one complete checkpoint: a classic one (one or more part
// files) or a V2 one (one top-level file naming its sidecars; V2 content
// may also be stored under the classic single-file name).
type checkpoint struct {
	version int64
	files   []string // in part order
}

// logListing is what _delta_log holds.
type logListing struct {
	commits     map[int64]string // version → file name
	checkpoints []checkpoint     // complete ones, by version
	latest      int64
	// Filled on demand: commit file mtimes (ms) and whether the table has
	// in-commit timestamps.
	mtimes map[int64]int64
	ict    *bool
}

// list reads _delta_log's names. Anything that is not a commit or a
// checkpoint (.crc files, Hadoop temp files, _last_checkpoint, log
// compactions) is ignored; sidecars are read through their checkpoint.
func (t *Table) list() (*logListing, error) {
	entries, err := os.ReadDir(t.logDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: no _delta_log directory", t.dir, ErrNotDeltaTable)
	}
	if err != nil {
		return nil, fmt.Errorf("list _delta_log: %w", err)
	}
	l := &logListing{commits: map[int64]string{}, latest: -1}
	type parts struct {
		n     int
		files map[int]string
	}
	multi := map[int64]map[int]*parts{} // version → part count → parts
	for _, e := range entries {
		name := e.Name()
		if m := commitName.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			l.commits[v] = name
			l.latest = max(l.latest, v)
		} else if m := checkpointName.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			l.checkpoints = append(l.checkpoints, checkpoint{version: v, files: []string{name}})
		} else if m := v2Name.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			l.checkpoints = append(l.checkpoints, checkpoint{version: v, files: []string{name}})
		} else if m := multipartName.FindStringSubmatch(name); m != nil {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			i, _ := strconv.Atoi(m[2])
			n, _ := strconv.Atoi(m[3])
			if multi[v] == nil {
				multi[v] = map[int]*parts{}
			}
			p := multi[v][n]
			if p == nil {
				p = &parts{n: n, files: map[int]string{}}
				multi[v][n] = p
			}
			p.files[i] = name
		}
	}
	for v, byN := range multi {
		for n, p := range byN {
			if len(p.files) != n {
				continue // an incomplete multi-part checkpoint is not a checkpoint
			}
			cp := checkpoint{version: v}
			for i := 1; i <= n; i++ {
				cp.files = append(cp.files, p.files[i])
			}
			l.checkpoints = append(l.checkpoints, cp)
		}
	}
	sort.Slice(l.checkpoints, func(i, j int) bool {
		a, b := l.checkpoints[i], l.checkpoints[j]
		if a.version != b.version {
			return a.version < b.version
		}
		return a.files[0] < b.files[0]
	})
	for _, cp := range l.checkpoints {
		l.latest = max(l.latest, cp.version)
	}
	return l, nil
}

// LastCheckpoint is the content of _delta_log/_last_checkpoint.
type LastCheckpoint struct {
	Version       int64  `json:"version"`
	Size          int64  `json:"size"`
	Parts         *int   `json:"parts,omitempty"`
	SizeInBytes   *int64 `json:"sizeInBytes,omitempty"`
	NumOfAddFiles *int64 `json:"numOfAddFiles,omitempty"`
}

// LastCheckpoint reads _delta_log/_last_checkpoint; ok is false if there is none.
func (t *Table) LastCheckpoint() (lc LastCheckpoint, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(t.logDir(), "_last_checkpoint"))
	if errors.Is(err, fs.ErrNotExist) {
		return lc, false, nil
	}
	if err != nil {
		return lc, false, err
	}
	if err := json.Unmarshal(data, &lc); err != nil {
		return lc, false, fmt.Errorf("_last_checkpoint: %w", err)
	}
	return lc, true, nil
}

// LatestVersion returns the table's newest version.
func (t *Table) LatestVersion() (int64, error) {
	l, err := t.list()
	if err != nil {
		return 0, err
	}
	if l.latest < 0 {
		return 0, fmt.Errorf("%s: %w: no commits in _delta_log", t.dir, ErrNotDeltaTable)
	}
	return l.latest, nil
}

// readCommit reads and parses commit v, with its _commit_timestamp.
func (t *Table) readCommit(l *logListing, v int64) (*Commit, error) {
	c, err := t.parseCommitFile(l, v)
	if err != nil {
		return nil, err
	}
	if c.Timestamp, err = t.commitTimestamp(l, c); err != nil {
		return nil, fmt.Errorf("commit %d: %w", v, err)
	}
	return c, nil
}

func (t *Table) parseCommitFile(l *logListing, v int64) (*Commit, error) {
	name, ok := l.commits[v]
	if !ok {
		return nil, fmt.Errorf("%w: commit %d is not in %s", ErrVersionNotFound, v, t.logDir())
	}
	data, err := os.ReadFile(filepath.Join(t.logDir(), name))
	if err != nil {
		return nil, err
	}
	c, err := parseCommit(v, data)
	if err != nil {
		return nil, fmt.Errorf("commit %d: %w", v, err)
	}
	return c, nil
}

// monotonizeWindow is how many earlier commits Spark takes into account
// when it makes commit file modification times increase
// (DeltaHistoryManager.POTENTIALLY_UNMONOTONIZED_TIMESTAMPS).
const monotonizeWindow = 100

// commitTimestamp is c's _commit_timestamp as Spark gives it: the in-commit
// timestamp when the table has in-commit timestamps enabled (its newest
// commit carries one: writers put one in every commit while
// delta.enableInCommitTimestamps is on, from its enablement version), else
// the commit file's modification time, made strictly increasing over the
// commits before it (a commit no later than its predecessor gets the
// predecessor's time + 1 ms), as Spark's DeltaHistoryManager.getCommits does.
// commitInfo.timestamp is not used: Spark ignores it, and it can be
// milliseconds off the file's time.
func (t *Table) commitTimestamp(l *logListing, c *Commit) (int64, error) {
	if c.CommitInfo != nil && c.CommitInfo.InCommitTimestamp != nil {
		on, err := t.inCommitTimestamps(l)
		if err != nil {
			return 0, err
		}
		if on {
			return *c.CommitInfo.InCommitTimestamp, nil
		}
	}
	ts, prev := int64(0), int64(math.MinInt64)
	for v := max(c.Version-monotonizeWindow, 0); v <= c.Version; v++ {
		if _, ok := l.commits[v]; !ok {
			continue
		}
		mt, err := t.commitMtime(l, v)
		if err != nil {
			return 0, err
		}
		ts = max(mt, prev+1)
		prev = ts
	}
	return ts, nil
}

// inCommitTimestamps reports whether the table has in-commit timestamps
// enabled: its newest commit has one.
func (t *Table) inCommitTimestamps(l *logListing) (bool, error) {
	if l.ict != nil {
		return *l.ict, nil
	}
	on := false
	if _, ok := l.commits[l.latest]; ok {
		c, err := t.parseCommitFile(l, l.latest)
		if err != nil {
			return false, err
		}
		on = c.CommitInfo != nil && c.CommitInfo.InCommitTimestamp != nil
	}
	l.ict = &on
	return on, nil
}

func (t *Table) commitMtime(l *logListing, v int64) (int64, error) {
	if mt, ok := l.mtimes[v]; ok {
		return mt, nil
	}
	st, err := os.Stat(filepath.Join(t.logDir(), l.commits[v]))
	if err != nil {
		return 0, err
	}
	if l.mtimes == nil {
		l.mtimes = map[int64]int64{}
	}
	l.mtimes[v] = st.ModTime().UnixMilli()
	return l.mtimes[v], nil
}

// readCheckpoint reads a checkpoint's actions: its part files' rows, and for
// a V2 checkpoint (checkpointMetadata and sidecar actions, under a UUID name
// or the classic one) the add and remove actions of its sidecar files.
func (t *Table) readCheckpoint(cp checkpoint) ([]action, error) {
	var out []action
	for _, name := range cp.files {
		p := filepath.Join(t.logDir(), name)
		var actions []action
		var err error
		if strings.HasSuffix(name, ".json") {
			actions, err = readJSONActions(p)
		} else {
			actions, err = readParquetActions(p, "txn", "add", "remove", "metaData", "protocol", "sidecar")
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", name, err)
		}
		for _, a := range actions {
			if a.Sidecar == nil {
				out = append(out, a)
				continue
			}
			sp, err := t.sidecarPath(a.Sidecar.Path)
			if err != nil {
				return nil, fmt.Errorf("checkpoint %s: %w", name, err)
			}
			side, err := readParquetActions(sp, "add", "remove")
			if err != nil {
				return nil, fmt.Errorf("checkpoint %s: sidecar %s: %w", name, a.Sidecar.Path, err)
			}
			out = append(out, side...)
		}
	}
	return out, nil
}

// sidecarPath resolves a sidecar action's path: a file name (URI-encoded)
// in _delta_log/_sidecars/, or an absolute file: URI.
func (t *Table) sidecarPath(p string) (string, error) {
	if strings.Contains(p, "://") || strings.HasPrefix(p, "file:") {
		return t.filePath(p)
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("sidecar path %q: %w", p, err)
	}
	return filepath.Join(t.logDir(), "_sidecars", filepath.FromSlash(dec)), nil
}

// readJSONActions reads a file of newline-delimited JSON actions (a V2
// checkpoint's JSON top-level file).
func readJSONActions(path string) ([]action, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []action
	for n, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		var a action
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// readParquetActions reads the given action columns of a checkpoint-shaped
// Parquet file (one action per row).
func readParquetActions(path string, keys ...string) ([]action, error) {
	var out []action
	err := readParquet(path, func(pf *parquet.File) error {
		r := parquet.NewReader(pf)
		defer r.Close()
		for {
			var row any
			if err := r.Read(&row); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			m, _ := row.(map[string]any)
			// Round-trip the interesting columns through JSON so checkpoint
			// rows and commit lines share one decoder.
			obj := map[string]any{}
			for _, k := range keys {
				if v := m[k]; v != nil {
					obj[k] = jsonable(v)
				}
			}
			if len(obj) == 0 {
				continue
			}
			data, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			var a action
			if err := json.Unmarshal(data, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
	})
	return out, err
}

// jsonable turns a value parquet-go reconstructed into one encoding/json
// renders as Delta's JSON would: byte strings as strings, nil pointers as null.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case []byte:
		return string(x)
	case *[]byte:
		if x == nil {
			return nil
		}
		return string(*x)
	case *string:
		if x == nil {
			return nil
		}
		return *x
	}
	return v
}

// readParquet opens a Parquet file for fn.
func readParquet(path string, fn func(*parquet.File) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return fn(pf)
}

// filePath resolves an action's path (a URI-encoded relative path, or an
// absolute file: URI) to a local path.
func (t *Table) filePath(p string) (string, error) {
	if strings.Contains(p, "://") || strings.HasPrefix(p, "file:") {
		u, err := url.Parse(p)
		if err != nil {
			return "", fmt.Errorf("file path %q: %w", p, err)
		}
		if u.Scheme != "file" {
			return "", fmt.Errorf("%w: file path %q is not on the local file system", ErrUnsupported, p)
		}
		return filepath.FromSlash(u.Path), nil
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("file path %q: %w", p, err)
	}
	return filepath.Join(t.dir, filepath.FromSlash(dec)), nil
}
