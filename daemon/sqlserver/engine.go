package sqlserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqle "github.com/dolthub/go-mysql-server"
	gsql "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/sirupsen/logrus"

	"github.com/upicdc/upicdc/store"
)

// DatabaseName is the one database the engine serves.
const DatabaseName = "upicdc"

// Errors a query can fail with. Callers test them with errors.Is.
var (
	// ErrReadOnly means a statement tried to write.
	ErrReadOnly = errors.New("upicdc's SQL is read-only: data comes in through the inbox (or `upicdc ingest`), never through SQL")
	// ErrQueryTimeout means a query ran longer than sql.query_timeout.
	ErrQueryTimeout = errors.New("query ran longer than sql.query_timeout")
	// ErrTooManyRows means a query read more rows than sql.max_rows.
	ErrTooManyRows = errors.New("query read more rows than sql.max_rows")
)

// Options configures an Engine.
type Options struct {
	// Location is the zone of an AS OF time without a zone (input.timezone;
	// default UTC).
	Location *time.Location
	// QueryTimeout bounds one statement (default 30s).
	QueryTimeout time.Duration
	// MaxRows bounds the rows one statement reads from the store (default
	// 10,000,000).
	MaxRows int64
	// Logger receives the engine's logs (default: discard).
	Logger *slog.Logger
}

// Engine runs SQL over a store. It is safe for concurrent use.
type Engine struct {
	db   *store.DB
	opts Options
	eng  *sqle.Engine
	log  *slog.Logger
}

// NewEngine returns an engine over db's tables.
func NewEngine(db *store.DB, opts Options) *Engine {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 30 * time.Second
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 10_000_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{db: db, opts: opts, log: opts.Logger}
	pro := &provider{db: &database{e: e}}
	a := analyzer.NewDefault(pro)
	e.eng = sqle.New(a, &sqle.Config{IsReadOnly: true})
	return e
}

// quietLogrus is go-mysql-server's logger with its output dropped: errors
// reach the client (and our slog) through the statement's result.
func quietLogrus() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// Result is a statement's result, read whole (Query).
type Result struct {
	Columns []Column
	Rows    [][]any
}

// Column is a result column: its name and SQL type.
type Column struct {
	Name string
	Type gsql.Type
}

// Query runs one statement in a session of its own and reads its result.
func (e *Engine) Query(ctx context.Context, query string) (*Result, error) {
	s := e.newSession(gsql.NewBaseSession())
	sctx := gsql.NewContext(ctx, gsql.WithSession(s))
	sctx.SetCurrentDatabase(DatabaseName)
	if err := s.CommandBegin(); err != nil {
		return nil, err
	}
	defer s.CommandEnd()
	sch, iter, _, err := e.eng.Query(sctx, query)
	if err != nil {
		return nil, e.clientError(err)
	}
	res := &Result{}
	for _, c := range sch {
		res.Columns = append(res.Columns, Column{Name: c.Name, Type: c.Type})
	}
	for {
		row, err := iter.Next(sctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = iter.Close(sctx)
			return nil, e.clientError(err)
		}
		res.Rows = append(res.Rows, row)
	}
	if err := iter.Close(sctx); err != nil {
		return nil, e.clientError(err)
	}
	return res, nil
}

// clientError names a refused write plainly; go-mysql-server says
// "database is read-only" in many wordings.
func (e *Engine) clientError(err error) error {
	if isWriteRefusal(err) {
		return fmt.Errorf("%w (%s)", ErrReadOnly, err.Error())
	}
	return err
}

// session is one client's session: each statement (command) reads one
// store snapshot, opened on first use and closed when the statement ends.
type session struct {
	*gsql.BaseSession
	e *Engine

	mu       sync.Mutex
	snap     *store.Snapshot
	deadline time.Time
	rows     atomic.Int64
}

func (e *Engine) newSession(base *gsql.BaseSession) *session {
	base.SetLogger(quietLogrus())
	return &session{BaseSession: base, e: e}
}

// CommandBegin starts a statement (gsql.LifecycleAwareSession).
func (s *session) CommandBegin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeSnapshot()
	s.deadline = time.Now().Add(s.e.opts.QueryTimeout)
	s.rows.Store(0)
	return nil
}

// CommandEnd ends a statement: its snapshot is released.
func (s *session) CommandEnd() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeSnapshot()
}

// SessionEnd is the connection's end.
func (s *session) SessionEnd() { s.CommandEnd() }

func (s *session) closeSnapshot() {
	if s.snap != nil {
		_ = s.snap.Close()
		s.snap = nil
	}
}

// snapshot returns the statement's snapshot, opening it on first use.
func (s *session) snapshot() (*store.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		snap, err := s.e.db.Snapshot()
		if err != nil {
			return nil, err
		}
		s.snap = snap
		if s.deadline.IsZero() {
			s.deadline = time.Now().Add(s.e.opts.QueryTimeout)
		}
	}
	return s.snap, nil
}

// count charges one row read to the statement and checks its limits.
func (s *session) count(ctx context.Context) error {
	n := s.rows.Add(1)
	if n > s.e.opts.MaxRows {
		return fmt.Errorf("%w (%d): narrow it with a WHERE on the key columns, or raise sql.max_rows", ErrTooManyRows, s.e.opts.MaxRows)
	}
	if n%1024 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		late := !s.deadline.IsZero() && time.Now().After(s.deadline)
		s.mu.Unlock()
		if late {
			return fmt.Errorf("%w (%s)", ErrQueryTimeout, s.e.opts.QueryTimeout)
		}
	}
	return nil
}

// sessionOf returns the upicdc session of ctx.
func sessionOf(ctx *gsql.Context) (*session, error) {
	s, ok := ctx.Session.(*session)
	if !ok {
		return nil, fmt.Errorf("sqlserver: session %T is not upicdc's", ctx.Session)
	}
	return s, nil
}

// provider serves the one database.
type provider struct{ db *database }

func (p *provider) Database(_ *gsql.Context, name string) (gsql.Database, error) {
	if strings.EqualFold(name, DatabaseName) {
		return p.db, nil
	}
	return nil, gsql.ErrDatabaseNotFound.New(name)
}

func (p *provider) HasDatabase(_ *gsql.Context, name string) bool {
	return strings.EqualFold(name, DatabaseName)
}

func (p *provider) AllDatabases(*gsql.Context) []gsql.Database { return []gsql.Database{p.db} }

// database is "upicdc": the store's tables, their histories and change
// feeds. It is versioned (AS OF) and read-only.
type database struct{ e *Engine }

var (
	_ gsql.VersionedDatabase = (*database)(nil)
	_ gsql.ReadOnlyDatabase  = (*database)(nil)
)

func (d *database) Name() string     { return DatabaseName }
func (d *database) IsReadOnly() bool { return true }

// Table kinds beside each store table.
const (
	historySuffix = "_history"
	changesSuffix = "_changes"
)

func (d *database) GetTableNames(*gsql.Context) ([]string, error) {
	var out []string
	for _, t := range d.e.db.Tables() {
		out = append(out, t.Name, t.Name+historySuffix, t.Name+changesSuffix)
	}
	return out, nil
}

func (d *database) GetTableNamesAsOf(ctx *gsql.Context, _ any) ([]string, error) {
	return d.GetTableNames(ctx)
}

func (d *database) GetTableInsensitive(ctx *gsql.Context, name string) (gsql.Table, bool, error) {
	return d.table(ctx, name, nil)
}

func (d *database) GetTableInsensitiveAsOf(ctx *gsql.Context, name string, asOf any) (gsql.Table, bool, error) {
	return d.table(ctx, name, asOf)
}

// table resolves a SQL table name: a store table (at asOf, if given), or
// its _history or _changes table.
func (d *database) table(ctx *gsql.Context, name string, asOf any) (gsql.Table, bool, error) {
	lower := strings.ToLower(name)
	for _, t := range d.e.db.Tables() {
		switch lower {
		case t.Name:
			version := int64(-1)
			if asOf != nil {
				v, err := d.resolveAsOf(ctx, t.Name, asOf)
				if err != nil {
					return nil, false, err
				}
				version = v
			}
			return newDataTable(d.e, t, version), true, nil
		case t.Name + historySuffix, t.Name + changesSuffix:
			if asOf != nil {
				return nil, false, fmt.Errorf("%s: AS OF reads a version of a data table (%s), not of its history or change feed", name, t.Name)
			}
			if lower == t.Name+historySuffix {
				return newHistoryTable(t), true, nil
			}
			return newChangesTable(d.e, t), true, nil
		}
	}
	return nil, false, nil
}

// resolveAsOf turns an AS OF value into a version of table: a whole number
// is a version; a time (or text that reads as one) is the newest version
// committed at or before it.
func (d *database) resolveAsOf(ctx *gsql.Context, table string, asOf any) (int64, error) {
	s, err := sessionOf(ctx)
	if err != nil {
		return 0, err
	}
	snap, err := s.snapshot()
	if err != nil {
		return 0, err
	}
	var at time.Time
	switch v := asOf.(type) {
	case time.Time:
		// A DATETIME literal has no zone: its wall clock is read in
		// Location, as the CLI's --as-of reads one.
		at = time.Date(v.Year(), v.Month(), v.Day(), v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), d.e.opts.Location)
	case string:
		text := strings.TrimSpace(v)
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			if n < 0 {
				return 0, fmt.Errorf("AS OF %d: versions start at 0", n)
			}
			latest, err := snap.LatestVersion(table)
			if err != nil {
				return 0, err
			}
			if n > latest {
				return 0, fmt.Errorf("AS OF %d: %s has versions 0..%d", n, table, latest)
			}
			return n, nil
		}
		if at, err = parseAsOfTime(text, d.e.opts.Location); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("AS OF %v: want a version number or a time", asOf)
	}
	v, err := snap.VersionAsOf(table, at)
	if err != nil {
		return 0, fmt.Errorf("AS OF %s: %w", at.Format(time.RFC3339Nano), err)
	}
	return v, nil
}

// parseAsOfTime reads RFC 3339, or a date and time (or a date alone)
// without a zone in loc.
func parseAsOfTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("AS OF %q: want a version number, RFC 3339 or 'YYYY-MM-DD hh:mm:ss'", s)
}

// Types of the SQL columns.
var (
	keyText   = types.MustCreateStringWithDefaults(typeVarChar, 255)
	moneyType = types.MustCreateDecimalType(18, 2)
	timeType  = types.DatetimeMaxPrecision
)

// sqlType is a store column's SQL type.
func sqlType(c store.Column, key bool) gsql.Type {
	switch c.Type {
	case store.Int:
		return types.Int64
	case store.Money:
		return moneyType
	case store.Timestamp:
		return timeType
	case store.Bool:
		return types.Boolean
	default: // String, Enum
		if key {
			return keyText
		}
		return types.Text
	}
}
