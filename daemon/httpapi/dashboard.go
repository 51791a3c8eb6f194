package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon/httpapi/dashboard"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// Bounds of a merchant's recent transactions.
const (
	// DefaultTransactions is how many transactions are listed without ?limit=.
	DefaultTransactions = 20
	// MaxTransactions is the most one response lists.
	MaxTransactions = 500
	// maxScanVersions and maxScanRows bound how far back the raw change
	// feed is read for one merchant: the raw table has no merchant index.
	maxScanVersions = 2000
	maxScanRows     = 200_000
)

// dashboardRoutes adds the dashboard (GET / and /assets/) and the
// endpoints it reads beyond the rest of the API.
func (s *server) dashboardRoutes(mux *http.ServeMux) {
	var page http.Handler
	if h, err := dashboard.New(); err != nil {
		s.log.Error("dashboard unavailable", "err", err)
		page = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusInternalServerError, err.Error(), "")
		})
	} else {
		page = h
	}
	mux.Handle("/{$}", get(page.ServeHTTP))
	mux.Handle("/assets/", get(page.ServeHTTP))
	mux.HandleFunc("/api/v1/tables", get(s.tables))
	mux.HandleFunc("/api/v1/merchants/{id}/transactions", get(s.merchantTransactions))
}

type columnJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Zone string `json:"zone,omitempty"`
}

type tableJSON struct {
	Name    string       `json:"name"`
	Doc     string       `json:"doc"`
	Derived bool         `json:"derived"`
	Version int64        `json:"version"`
	Key     []string     `json:"key"`
	Columns []columnJSON `json:"columns"`
}

// tables lists every table with its latest version and columns; a
// timestamp column names the zone it is written in (windows.timezone for
// the windows).
func (s *server) tables(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	snap, err := s.db.Snapshot()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer snap.Close()
	out := struct {
		Tables []tableJSON `json:"tables"`
	}{Tables: []tableJSON{}}
	for _, t := range s.db.Tables() {
		v, err := snap.LatestVersion(t.Name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		tj := tableJSON{Name: t.Name, Doc: t.Doc, Derived: t.Derived, Version: v, Key: []string{}, Columns: []columnJSON{}}
		for i, c := range t.Schema.Columns {
			cj := columnJSON{Name: c.Name, Type: c.Type.String()}
			if c.Type == store.Timestamp && c.Zone != nil {
				cj.Zone = c.Zone.String()
			}
			tj.Columns = append(tj.Columns, cj)
			if i < t.Schema.KeyColumns {
				tj.Key = append(tj.Key, c.Name)
			}
		}
		out.Tables = append(out.Tables, tj)
	}
	writeJSON(w, http.StatusOK, out)
}

type transactionsJSON struct {
	MerchantID string `json:"merchant_id"`
	// Version is the raw table's version read.
	Version int64 `json:"version"`
	// ScannedFrom is the oldest raw version read; Complete says it reached
	// the table's first version, so no older transaction was left out.
	ScannedFrom int64 `json:"scanned_from"`
	Complete    bool  `json:"complete"`
	// Truncated: more of the merchant's changes were found than ?limit=.
	Truncated    bool            `json:"truncated"`
	Transactions []render.Object `json:"transactions"`
}

// merchantTransactions lists a merchant's newest raw changes (inserts,
// updates' new images and deletes) with their versions, newest first. The
// raw table is keyed by transaction, so this reads the change feed of the
// newest raw versions one version at a time, stopping at ?limit= rows or
// after maxScanVersions versions or maxScanRows change rows.
func (s *server) merchantTransactions(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "limit"); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := idParam(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", DefaultTransactions, 1, MaxTransactions)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sch, err := s.schema(cdc.RawTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	col := sch.Index("merchant_id")
	if col < 0 {
		s.fail(w, r, fmt.Errorf("%s has no merchant_id column", cdc.RawTable))
		return
	}
	snap, err := s.db.Snapshot()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer snap.Close()
	if _, found, err := s.db.Get(agg.TotalsTable, -1, store.Row{store.S(id)}); err != nil {
		s.fail(w, r, err)
		return
	} else if !found {
		s.fail(w, r, fmt.Errorf("merchant %q: %w", id, store.ErrNotFound))
		return
	}
	latest, err := snap.LatestVersion(cdc.RawTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := transactionsJSON{MerchantID: id, Version: latest, ScannedFrom: latest + 1, Transactions: []render.Object{}}
	names := render.ChangeNames(sch)
	var scanned int64
	for v := latest; v >= 1 && latest-v < maxScanVersions && scanned < maxScanRows && !out.Truncated; v-- {
		var found []store.Change
		err := snap.Changes(r.Context(), cdc.RawTable, v, v, func(c store.Change) error {
			scanned++
			if c.Type != store.UpdatePreimage && c.Row[col].Str == id {
				c.Row = slices.Clone(c.Row)
				found = append(found, c)
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrVersionNotFound) {
			s.fail(w, r, err)
			return
		}
		out.ScannedFrom = v
		for _, c := range found {
			if int64(len(out.Transactions)) == limit {
				out.Truncated = true
				break
			}
			out.Transactions = append(out.Transactions, render.Object{Columns: names, Cells: render.Change(sch, c)})
		}
	}
	out.Complete = out.ScannedFrom <= 1
	writeJSON(w, http.StatusOK, out)
}
