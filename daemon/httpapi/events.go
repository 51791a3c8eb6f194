package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Event is one committed version of a table, as /api/v1/events sends it.
type Event struct {
	Table   string    `json:"table"`
	Version int64     `json:"version"`
	Time    time.Time `json:"time"` // the commit's timestamp (UTC)
	// Operation is the commit's operation (MERGE, STREAMING UPDATE, ...).
	Operation string `json:"operation,omitempty"`
}

// heartbeat is how often an idle event stream sends a comment, so proxies
// and browsers keep the connection (and notice a dead one).
const heartbeat = 15 * time.Second

// events streams Server-Sent Events: first "hello" with every table's
// latest version (a client that reconnects reloads from it), then one
// "commit" per committed version of any table, as the daemon commits them.
// The stream ends when the client leaves or the daemon shuts down; the
// browser's EventSource reconnects by itself (retry: 1s).
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.opt.Events == nil {
		writeError(w, http.StatusNotFound, "no event feed in this server", "")
		return
	}
	// Subscribe before reading the versions: no commit falls in between.
	feed, cancel := s.opt.Events()
	defer cancel()
	latest := map[string]int64{}
	for _, t := range s.db.Tables() {
		v, err := s.db.LatestVersion(t.Name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		latest[t.Name] = v
	}
	rc := http.NewResponseController(w)
	// The stream outlives the server's WriteTimeout.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		s.fail(w, r, fmt.Errorf("event stream: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	if err := send("hello", map[string]any{"tables": latest}); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-feed:
			if !ok {
				return // shutting down, or this client fell too far behind
			}
			if err := send("commit", ev); err != nil {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
