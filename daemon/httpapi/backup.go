package httpapi

import (
	"net/http"
	"strconv"
	"time"
)

// backup streams a consistent copy of the store file (bbolt's Tx.WriteTo
// in one read transaction: the daemon goes on writing meanwhile). It is
// not bounded by RequestTimeout or the server's write timeout: a big store
// takes as long as it takes; the client sees a cut-short copy as an error
// (Content-Length is announced) and `upicdc backup` inspects what it got.
func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="upicdc.db"`)
	if r.Method == http.MethodHead {
		return
	}
	started := false
	if _, err := s.db.Backup(w, func(n int64) {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		started = true
	}); err != nil {
		s.log.Error("backup failed", "err", err)
		if !started {
			s.fail(w, r, err)
			return
		}
		// The length was announced: cutting the connection short tells
		// the client the copy is incomplete.
		panic(http.ErrAbortHandler)
	}
}
