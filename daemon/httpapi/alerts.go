package httpapi

import (
	"fmt"
	"net/http"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// AlertsConsumer is the notifier's consumer name (its outbox position and
// dead letters); the daemon sets it.
const AlertsConsumer = "alerts-notifier"

// AlertStates are the values of ?state= (and `upicdc alerts --state`).
var alertStates = []string{agg.AlertFiring, agg.AlertResolved, "all"}

// AlertStateOK reports whether s is a state filter.
func AlertStateOK(s string) bool {
	for _, v := range alertStates {
		if s == v {
			return true
		}
	}
	return false
}

type alertsJSON struct {
	Table   string          `json:"table"`
	Version int64           `json:"version"`
	State   string          `json:"state"`
	Alerts  []render.Object `json:"alerts"`
}

// alerts lists merchant_alerts in key order, of one ?state= (firing,
// resolved or all; default all).
func (s *server) alerts(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "state"); err != nil {
		s.fail(w, r, err)
		return
	}
	state, ok, err := oneParam(r, "state")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		state = "all"
	}
	if !AlertStateOK(state) {
		s.fail(w, r, &paramError{"state", fmt.Sprintf("%q is not one of firing, resolved, all", state)})
		return
	}
	sch, err := s.schema(agg.AlertsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	col := sch.Index("state")
	out := alertsJSON{Table: agg.AlertsTable, State: state, Alerts: []render.Object{}}
	names := render.Names(sch)
	out.Version, err = s.db.Scan(r.Context(), agg.AlertsTable, -1, store.KeyRange{}, func(row store.Row) error {
		if state == "all" || row[col].Str == state {
			out.Alerts = append(out.Alerts, render.Object{Columns: names, Cells: render.Row(sch, row)})
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type outboxJSON struct {
	Consumer string `json:"consumer"`
	// Position is the next change of merchant_alerts to deliver.
	Position store.Position `json:"position"`
	// LatestVersion is merchant_alerts' newest version.
	LatestVersion int64 `json:"latest_version"`
	// DeadLetters are transitions given up on after alerts.max_attempts.
	DeadLetters []store.DeadLetter `json:"dead_letters"`
}

// outbox shows the notifier's position and its dead letters.
func (s *server) outbox(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	pos, ok, err := s.db.ConsumerPosition(AlertsConsumer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		pos = store.Position{Version: 1}
	}
	latest, err := s.db.LatestVersion(agg.AlertsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	dead, err := s.db.DeadLetters(AlertsConsumer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if dead == nil {
		dead = []store.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, outboxJSON{Consumer: AlertsConsumer, Position: pos, LatestVersion: latest, DeadLetters: dead})
}
