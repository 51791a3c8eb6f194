package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

type alertsOptions struct {
	state     string
	redeliver bool
}

func newAlertsCommand(a *app) *cobra.Command {
	var o alertsOptions
	cmd := &cobra.Command{
		Use:   "alerts [--state firing|resolved|all] [--redeliver]",
		Short: "Show the alerts (merchant_alerts); with --redeliver, try the dead letters again",
		Long: `Prints merchant_alerts: per alert rule (alerts.rules), merchant and window, whether it is
firing or resolved, when it fired and was resolved, and the window's metrics at that transition.

--redeliver tries every dead letter (a transition given up on after alerts.max_attempts, see
GET /api/v1/alerts/outbox) once more on its target and removes those delivered. It writes to the
store, so stop ` + "`upicdc serve`" + ` first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.state != agg.AlertFiring && o.state != agg.AlertResolved && o.state != "all" {
				return usageError{fmt.Errorf("--state %q: want firing, resolved or all", o.state)}
			}
			if o.redeliver {
				return a.redeliver(cmd)
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			sch, err := schemaOf(db, agg.AlertsTable)
			if err != nil {
				return err
			}
			col := sch.Index("state")
			out, err := a.scanTable(cmd, db, agg.AlertsTable, -1, store.KeyRange{}, func(r store.Row) bool {
				return o.state == "all" || r[col].Str == o.state
			})
			if err != nil {
				return err
			}
			return a.print(out)
		},
	}
	cmd.Flags().StringVar(&o.state, "state", "all", "firing, resolved or all")
	cmd.Flags().BoolVar(&o.redeliver, "redeliver", false, "try the dead letters again")
	return cmd
}

func (a *app) redeliver(cmd *cobra.Command) error {
	db, err := a.openExisting()
	if err != nil {
		return err
	}
	defer db.Close()
	delivered, left, err := daemon.Redeliver(cmd.Context(), db, a.cfg.Alerts, a.log)
	if err != nil {
		return err
	}
	out := render.NewTable("delivered", "dead_letters_left")
	out.Add(render.Int(int64(delivered)), render.Int(int64(left)))
	return a.print(out)
}
