package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
)

// checkpoint is one complete classic checkpoint (one or more part files).
type checkpoint struct {
	version int64
	files   []string // in part order
}

// logListing is what _delta_log holds.
type logListing struct {
	commits     map[int64]string // version → file name
	checkpoints []checkpoint     // complete ones, by version
	latest      int64
}

// list reads _delta_log's names. Anything that is not a commit or a classic
// checkpoint (.crc files, Hadoop temp files, _last_checkpoint, V2 checkpoint
// sidecars, log compactions) is ignored.
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
	sort.Slice(l.checkpoints, func(i, j int) bool { return l.checkpoints[i].version < l.checkpoints[j].version })
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
	name, ok := l.commits[v]
	if !ok {
		return nil, fmt.Errorf("%w: commit %d is not in %s", ErrVersionNotFound, v, t.logDir())
	}
	p := filepath.Join(t.logDir(), name)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	c, err := parseCommit(v, data)
	if err != nil {
		return nil, fmt.Errorf("commit %d: %w", v, err)
	}
	switch {
	case c.CommitInfo != nil && c.CommitInfo.InCommitTimestamp != nil:
		c.Timestamp = *c.CommitInfo.InCommitTimestamp
	case c.CommitInfo != nil && c.CommitInfo.Timestamp != nil:
		c.Timestamp = *c.CommitInfo.Timestamp
	default:
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		c.Timestamp = st.ModTime().UnixMilli()
	}
	return c, nil
}

// readCheckpoint reads a classic checkpoint's actions.
func (t *Table) readCheckpoint(cp checkpoint) ([]action, error) {
	var out []action
	for _, name := range cp.files {
		err := readParquet(filepath.Join(t.logDir(), name), func(pf *parquet.File) error {
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
				for _, k := range []string{"txn", "add", "remove", "metaData", "protocol"} {
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
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", name, err)
		}
	}
	return out, nil
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
