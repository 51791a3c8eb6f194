package main

import (
	"strconv"
	"time"

	gsql "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/daemon/sqlserver"
	"github.com/upicdc/upicdc/store/render"
)

func newSQLCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   `sql "QUERY"`,
		Short: "Run one read-only SQL query (MySQL dialect) over the tables; works while serve runs",
		Long: `Runs one SQL statement over database upicdc, the same SQL the daemon serves on sql.listen:
every table (` + tableNames() + `), each with <table>_history (its commits)
and <table>_changes (its change feed; filter _commit_version to read only those versions).
SELECT … FROM t AS OF 3 reads version 3; AS OF '2024-12-21 10:30:00' the newest version
committed then (a time without a zone is read in input.timezone). Money is DECIMAL(18,2);
times are DATETIME(6) in the column's zone (windows.timezone for window starts and ends,
UTC otherwise). Statements that write are refused.

Example: upicdc sql "SELECT merchant_id, net_sales FROM aggregated_upi_transactions ORDER BY 2 DESC"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			e := sqlserver.NewEngine(db, sqlserver.Options{
				Location:     a.loc,
				QueryTimeout: a.cfg.SQL.QueryTimeout,
				MaxRows:      int64(a.cfg.SQL.MaxRows),
				Logger:       a.log,
			})
			res, err := e.Query(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			names := make([]string, len(res.Columns))
			for i, c := range res.Columns {
				names[i] = c.Name
			}
			out := render.NewTable(names...)
			for _, row := range res.Rows {
				cells := make([]render.Cell, len(row))
				for i, v := range row {
					cells[i] = sqlCell(res.Columns[i].Type, v)
				}
				out.Add(cells...)
			}
			return a.print(out)
		},
	}
}

// sqlCell renders one SQL value: numbers as JSON numbers (decimals with
// their column's scale, never through a float), times as the mysql CLI
// shows a DATETIME, text as text.
func sqlCell(t gsql.Type, v any) render.Cell {
	switch x := v.(type) {
	case nil:
		return render.Null()
	case decimal.Decimal:
		if dt, ok := t.(gsql.DecimalType); ok {
			return render.Number(x.StringFixed(int32(dt.Scale())))
		}
		return render.Number(x.String())
	case int64:
		return render.Int(x)
	case int32:
		return render.Int(int64(x))
	case int16:
		return render.Int(int64(x))
	case int8:
		return render.Int(int64(x))
	case int:
		return render.Int(int64(x))
	case uint64:
		return render.Number(strconv.FormatUint(x, 10))
	case uint32:
		return render.Int(int64(x))
	case uint8:
		return render.Int(int64(x))
	case float32:
		return render.Number(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		return render.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case time.Time:
		return render.String(x.Format("2006-01-02 15:04:05.999999"))
	case bool:
		return render.Bool(x)
	case string:
		return render.String(x)
	case []byte:
		return render.String(string(x))
	default:
		s, err := types.LongText.SQL(nil, nil, v)
		if err != nil {
			return render.String("?")
		}
		return render.String(s.ToString())
	}
}
