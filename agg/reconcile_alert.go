package agg

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// ReconcileSeverity is the severity of the built-in reconcile_differences
// alert.
const ReconcileSeverity = "critical"

// ReconcileAlertValue is the value column of a reconcile_differences
// transition.
type ReconcileAlertValue struct {
	Differences int              `json:"differences"`
	RawVersion  int64            `json:"raw_version"`
	Versions    map[string]int64 `json:"versions"`
	First       string           `json:"first,omitempty"` // the first difference, as text
}

// RecordReconcileAlert enters a reconcile run's result in merchant_alerts:
// differences fire the built-in alert reconcile_differences (merchant_id
// "", window_start the Unix epoch: one alert for the whole pipeline) unless
// it is already firing; a clean run resolves it if it is. The transition is
// a commit of the stream's tables that does not move its checkpoint
// (operation RECONCILE), so the notifier delivers it like a rule's. It
// reports whether a transition was written.
func RecordReconcileAlert(ctx context.Context, db *store.DB, stream string, rep Report, now time.Time) (bool, error) {
	if stream == "" {
		stream = DefaultStream
	}
	if _, err := db.Table(AlertsTable); err != nil {
		return false, fmt.Errorf("reconcile alert: %w", err)
	}
	_, wrote, err := db.Process(ctx, stream, cdc.RawTable, func(tx *store.ProcessTx) error {
		w, err := tx.Table(AlertsTable)
		if err != nil {
			return err
		}
		key := store.Row{store.S(ReconcileRule), store.S(""), store.I(0)}
		cur, found, err := w.Get(key)
		if err != nil {
			return err
		}
		firing := found && !cur.Deleted && cur.Row[aState].Str == AlertFiring
		v := ReconcileAlertValue{Differences: len(rep.Differences), RawVersion: rep.RawVersion, Versions: rep.Versions}
		if len(rep.Differences) > 0 {
			d := rep.Differences[0]
			v.First = fmt.Sprintf("%s %s %s: stored %s, expected %s", d.Table, d.Key, d.Column, d.Stored, d.Expected)
		}
		value, _ := json.Marshal(v) // plain fields: cannot fail
		var next store.Row
		switch {
		case len(rep.Differences) > 0 && !firing:
			next = make(store.Row, aColumns)
			copy(next, key)
			next[aSize] = store.S("")
			next[aSeverity] = store.S(ReconcileSeverity)
			next[aState] = store.S(AlertFiring)
			next[aFiredAt] = store.T(now)
			next[aResolvedAt] = store.Null()
			next[aValue] = store.S(string(value))
			next[aRawVersion] = store.I(rep.RawVersion)
		case len(rep.Differences) == 0 && firing:
			next = append(store.Row(nil), cur.Row...)
			next[aState] = store.S(AlertResolved)
			next[aResolvedAt] = store.T(now)
			next[aValue] = store.S(string(value))
			next[aRawVersion] = store.I(rep.RawVersion)
		default:
			return nil // nothing changes: roll back
		}
		if _, err := w.Upsert(next); err != nil {
			return err
		}
		tx.Rebuilt("RECONCILE", map[string]string{"differences": strconv.Itoa(len(rep.Differences))}, nil)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("reconcile alert: %w", err)
	}
	return wrote, nil
}
