package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// oneParam returns a query parameter given at most once.
func oneParam(r *http.Request, name string) (string, bool, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return "", false, nil
	}
	if len(q[name]) > 1 {
		return "", false, &paramError{name, "given more than once"}
	}
	return q.Get(name), true, nil
}

// timeParam reads a time query parameter: RFC 3339, or a date and time
// without a zone ("2024-12-21 10:00:00") or a date alone ("2024-12-21",
// its midnight) read in loc.
func timeParam(r *http.Request, name string, loc *time.Location) (t time.Time, ok bool, err error) {
	v, ok, err := oneParam(r, name)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	us, err := parseTime(v, loc)
	if err != nil {
		return time.Time{}, false, &paramError{name, err.Error()}
	}
	return time.UnixMicro(us), true, nil
}

func parseTime(s string, loc *time.Location) (int64, error) {
	if t := strings.TrimSpace(s); len(t) == len(time.DateOnly) {
		if d, err := time.ParseInLocation(time.DateOnly, t, loc); err == nil {
			return d.UnixMicro(), nil
		}
	}
	return cdc.ParseTime(s, loc)
}

// readVersion resolves ?version= or ?as_of= (Delta's versionAsOf and
// timestampAsOf) for table to a version; -1 means the latest.
func (s *server) readVersion(r *http.Request, table string) (int64, error) {
	version, err := intParam(r, "version", -1, 0, 1<<62)
	if err != nil {
		return 0, err
	}
	at, ok, err := timeParam(r, "as_of", s.loc)
	if err != nil || !ok {
		return version, err
	}
	if version >= 0 {
		return 0, &paramError{"as_of", "give version or as_of, not both"}
	}
	v, err := s.db.VersionAsOf(table, at)
	if err != nil {
		return 0, fmt.Errorf("read %s as of %s: %w", table, at.UTC().Format(time.RFC3339Nano), err)
	}
	return v, nil
}

// schema returns a table's current schema.
func (s *server) schema(name string) (*store.Schema, error) {
	t, err := s.db.Table(name)
	if err != nil {
		return nil, err
	}
	return &t.Schema, nil
}
