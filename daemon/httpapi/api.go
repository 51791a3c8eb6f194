package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// Limits of one request and one response.
const (
	// DefaultLimit is the number of change-feed rows or commits returned
	// when the request gives no limit.
	DefaultLimit = 1000
	// MaxLimit is the most rows one response holds.
	MaxLimit = 10000
	// RequestTimeout bounds a request's handling (the response is then a 503).
	RequestTimeout = 30 * time.Second
	// maxBody is how much of a request body is accepted: the API is
	// read-only, so none is needed.
	maxBody = 1 << 10
)

// Options configures the API.
type Options struct {
	// DB is the store read by every endpoint.
	DB *store.DB
	// Location is the zone of as_of times written without one, such as
	// "2024-12-21 10:00:00" (input.timezone; default UTC). Responses write
	// each timestamp in its column's zone (see package store/render).
	Location *time.Location
	// Status returns the value served as /api/v1/status.
	Status func(context.Context) (any, error)
	// Ready says whether /readyz answers 200, and why not.
	Ready func() (bool, string)
	// Events subscribes to the daemon's commits for /api/v1/events (nil:
	// 404): a channel of every committed version, closed when the daemon
	// shuts down or the subscriber falls too far behind, and a cancel.
	Events func() (<-chan Event, func())
	// Metrics serves /metrics (nil: 404).
	Metrics http.Handler
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
}

type server struct {
	db  *store.DB
	loc *time.Location
	opt Options
	log *slog.Logger
}

// New returns the API's handler.
func New(opts Options) http.Handler {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ready == nil {
		opts.Ready = func() (bool, string) { return true, "ready" }
	}
	s := &server{db: opts.DB, loc: opts.Location, opt: opts, log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", get(s.healthz))
	mux.HandleFunc("/readyz", get(s.readyz))
	if opts.Metrics != nil {
		mux.Handle("/metrics", get(opts.Metrics.ServeHTTP))
	}
	mux.HandleFunc("/api/v1/status", get(s.status))
	mux.HandleFunc("/api/v1/merchants", get(s.merchants))
	mux.HandleFunc("/api/v1/merchants/{id}", get(s.merchant))
	mux.HandleFunc("/api/v1/merchants/{id}/windows", get(s.merchantWindows))
	mux.HandleFunc("/api/v1/windows", get(s.windows))
	mux.HandleFunc("/api/v1/tables/{table}/history", get(s.history))
	mux.HandleFunc("/api/v1/tables/{table}/changes", get(s.changes))
	mux.HandleFunc("/api/v1/transactions/{id}", get(s.transaction))
	mux.HandleFunc("/api/v1/alerts", get(s.alerts))
	mux.HandleFunc("/api/v1/alerts/outbox", get(s.outbox))
	s.dashboardRoutes(mux)
	mux.HandleFunc("/api/v1/audit", get(s.audit))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s (see / (the dashboard), /api/v1/status, /api/v1/merchants, /api/v1/merchants/{id}/transactions, /api/v1/events, /api/v1/tables, /api/v1/merchants/{id}/windows, /api/v1/windows, /api/v1/tables/{table}/history, /api/v1/tables/{table}/changes, /api/v1/transactions/{id}, /api/v1/alerts, /api/v1/audit, /healthz, /readyz, /metrics)", r.URL.Path), "")
	})
	timeoutBody, _ := json.Marshal(errorBody{Error: "request timed out"})
	// Streams bypass the timeout handler, which would buffer them: a backup
	// (the whole store, see backup.go) and the events stream.
	outer := http.NewServeMux()
	outer.Handle("/", http.TimeoutHandler(mux, RequestTimeout, string(timeoutBody)))
	outer.HandleFunc("/api/v1/backup", get(s.backup))
	outer.HandleFunc("/api/v1/events", get(s.events))
	return s.accessLog(outer)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushing the
// event stream).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog logs each request at debug level.
func (s *server) accessLog(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", rec.code, "duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// NewServer returns an http.Server for h with timeouts and header limits
// suited to a small read-only API.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      RequestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// get admits GET and HEAD only, with a request body of at most maxBody.
func get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: the API is read-only", "")
			return
		}
		if !bodyWithinLimit(w, r) {
			return
		}
		h(w, r)
	}
}

// bodyWithinLimit reads and discards the request body (no endpoint uses
// one), answering 413 when it is longer than maxBody, declared or chunked.
func bodyWithinLimit(w http.ResponseWriter, r *http.Request) bool {
	tooLarge := func() bool {
		// Do not read the rest of a big body, and do not keep the
		// connection for it.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the API is read-only and accepts at most %d bytes", maxBody), "")
		return false
	}
	if r.ContentLength > maxBody {
		return tooLarge()
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge()
		}
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error(), "")
		return false
	}
	return true
}

type errorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg, param string) {
	writeJSON(w, code, errorBody{Error: msg, Parameter: param})
}

// writeJSON encodes v whole before writing, so an encoding error is still a
// clean 500 and Content-Length is exact.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		b.Reset()
		_ = json.NewEncoder(&b).Encode(errorBody{Error: "encode response: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// fail writes err's response: a bad parameter is a 400 naming it; an
// unknown name or version, or a time before a table's first commit, a 404;
// anything else a 500 (logged).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *paramError
	var before *store.BeforeFirstCommitError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, pe.Error(), pe.name)
	case errors.As(err, &before):
		writeError(w, http.StatusNotFound, "as_of: "+before.Error(), "as_of")
	case errors.Is(err, store.ErrBelowHorizon):
		writeError(w, http.StatusGone, err.Error(), "") // removed by a vacuum
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnknownTable), errors.Is(err, store.ErrVersionNotFound):
		writeError(w, http.StatusNotFound, err.Error(), "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "request cancelled: "+err.Error(), "")
	default:
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error(), "")
	}
}

// paramError is a bad query or path parameter (400).
type paramError struct{ name, msg string }

func (e *paramError) Error() string { return e.name + ": " + e.msg }

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return def, nil
	}
	if len(q[name]) > 1 {
		return 0, &paramError{name, "given more than once"}
	}
	v, err := strconv.ParseInt(q.Get(name), 10, 64)
	if err != nil {
		return 0, &paramError{name, fmt.Sprintf("%q is not an integer", q.Get(name))}
	}
	if v < lo || v > hi {
		return 0, &paramError{name, fmt.Sprintf("%d is out of range %d..%d", v, lo, hi)}
	}
	return v, nil
}

// checkQuery refuses query parameters an endpoint does not know, so a typo
// ("form=3") is an error rather than silently ignored.
func checkQuery(r *http.Request, known ...string) error {
	for k := range r.URL.Query() {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return &paramError{k, "unknown query parameter"}
		}
	}
	return nil
}

// idParam reads a path id, bounded like ids in batch files.
func idParam(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if id == "" {
		return "", &paramError{name, "empty"}
	}
	if len(id) > cdc.MaxIDLen {
		return "", &paramError{name, fmt.Sprintf("longer than %d bytes", cdc.MaxIDLen)}
	}
	return id, nil
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.opt.Ready()
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.opt.Status == nil {
		writeError(w, http.StatusNotFound, "no status in this server", "")
		return
	}
	st, err := s.opt.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// table reads the {table} path value: one of the store's tables.
func (s *server) table(r *http.Request) (store.TableInfo, error) {
	return s.db.Table(r.PathValue("table"))
}

type historyJSON struct {
	Table     string          `json:"table"`
	Commits   []render.Object `json:"commits"`
	Truncated bool            `json:"truncated"`
	// NextFrom is the from= that continues a truncated list.
	NextFrom *int64 `json:"next_from,omitempty"`
}

// history lists a table's commits from ?from=, at most ?limit=; with
// ?as_of= only those committed at or before it.
func (s *server) history(w http.ResponseWriter, r *http.Request) {
	t, err := s.table(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkQuery(r, "from", "limit", "as_of"); err != nil {
		s.fail(w, r, err)
		return
	}
	from, err := intParam(r, "from", 0, 0, 1<<62)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	upTo, err := s.readVersion(r, t.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	commits, err := s.db.History(t.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := historyJSON{Table: t.Name, Commits: []render.Object{}}
	names := render.CommitNames()
	for _, c := range commits {
		if c.Version < from {
			continue
		}
		if upTo >= 0 && c.Version > upTo {
			break
		}
		if int64(len(out.Commits)) == limit {
			out.Truncated = true
			next := c.Version
			out.NextFrom = &next
			break
		}
		out.Commits = append(out.Commits, render.Object{Columns: names, Cells: render.Commit(c)})
	}
	writeJSON(w, http.StatusOK, out)
}

type changesJSON struct {
	Table     string          `json:"table"`
	From      int64           `json:"from"`
	To        int64           `json:"to"`
	Changes   []render.Object `json:"changes"`
	Truncated bool            `json:"truncated"`
	// Next continues a truncated feed: ?from=Next.From&skip=Next.Skip
	// (the rows of version Next.From already returned are skipped).
	Next *nextJSON `json:"next,omitempty"`
}

type nextJSON struct {
	From int64 `json:"from"`
	Skip int64 `json:"skip"`
}

// errFull stops a read once the response is full.
var errFull = errors.New("response full")

// changes is a table's change feed of versions ?from=..?to=, at most
// ?limit= rows, skipping the first ?skip= rows of version from.
func (s *server) changes(w http.ResponseWriter, r *http.Request) {
	t, err := s.table(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkQuery(r, "from", "to", "limit", "skip"); err != nil {
		s.fail(w, r, err)
		return
	}
	if !r.URL.Query().Has("from") {
		s.fail(w, r, &paramError{"from", "required (the first version, inclusive)"})
		return
	}
	from, err := intParam(r, "from", 0, 0, 1<<62)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	latest, err := s.db.LatestVersion(t.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := intParam(r, "to", latest, 0, 1<<62)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	skip, err := intParam(r, "skip", 0, 0, 1<<62)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case from > latest:
		s.fail(w, r, &paramError{"from", fmt.Sprintf("version %d does not exist (latest is %d)", from, latest)})
		return
	case to < from:
		s.fail(w, r, &paramError{"to", fmt.Sprintf("%d is before from (%d)", to, from)})
		return
	}
	to = min(to, latest)
	out := changesJSON{Table: t.Name, From: from, To: to, Changes: []render.Object{}}
	names := render.ChangeNames(&t.Schema)
	var versions []int64 // each returned row's version
	var seenInFirst int64
	err = s.db.Changes(r.Context(), t.Name, from, to, func(c store.Change) error {
		if c.Version == from && seenInFirst < skip {
			seenInFirst++
			return nil
		}
		if int64(len(out.Changes)) == limit {
			out.Truncated = true
			n := nextJSON{From: c.Version}
			if c.Version == from {
				n.Skip = skip + limit
			} else {
				// Rows of this version already returned.
				for i := len(versions) - 1; i >= 0 && versions[i] == c.Version; i-- {
					n.Skip++
				}
			}
			out.Next = &n
			return errFull
		}
		out.Changes = append(out.Changes, render.Object{Columns: names, Cells: render.Change(&t.Schema, c)})
		versions = append(versions, c.Version)
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type transactionJSON struct {
	TransactionID string          `json:"transaction_id"`
	Versions      []render.Object `json:"versions"`
}

// transaction lists every image of one raw transaction, oldest first.
func (s *server) transaction(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := idParam(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sch, err := s.schema(cdc.RawTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	versions, err := s.db.KeyHistory(cdc.RawTable, store.Row{store.S(id)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := transactionJSON{TransactionID: id, Versions: make([]render.Object, 0, len(versions))}
	names := render.VersionNames(sch)
	for _, v := range versions {
		// A raw row's delete is ordered by its transaction_time.
		out.Versions = append(out.Versions, render.Object{Columns: names, Cells: render.Version(sch, v, "transaction_time")})
	}
	writeJSON(w, http.StatusOK, out)
}
