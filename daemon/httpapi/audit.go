package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

type auditJSON struct {
	Table   string          `json:"table"`
	Version int64           `json:"version"`
	Outcome string          `json:"outcome"`
	Rows    []render.Object `json:"rows"`
}

// audit lists pipeline_audit oldest first, filtered by ?since= (a time)
// and ?outcome= (default all).
func (s *server) audit(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "since", "outcome"); err != nil {
		s.fail(w, r, err)
		return
	}
	outcome, ok, err := oneParam(r, "outcome")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		outcome = "all"
	}
	if !cdc.AuditOutcomeOK(outcome) {
		s.fail(w, r, &paramError{"outcome", fmt.Sprintf("%q is not one of %s, all", outcome, strings.Join(cdc.AuditOutcomes, ", "))})
		return
	}
	f := cdc.AuditFilter{Outcome: outcome}
	if f.Since, _, err = timeParam(r, "since", s.loc); err != nil {
		s.fail(w, r, err)
		return
	}
	sch, err := s.schema(cdc.AuditTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := auditJSON{Table: cdc.AuditTable, Outcome: outcome, Rows: []render.Object{}}
	names := render.Names(sch)
	out.Version, err = s.db.Scan(r.Context(), cdc.AuditTable, -1, store.KeyRange{}, func(row store.Row) error {
		if f.Keep(row) {
			out.Rows = append(out.Rows, render.Object{Columns: names, Cells: render.Row(sch, row)})
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
