package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon/sqlserver"
)

// openSQL binds the SQL server (sql.listen) and the command socket; they
// start serving with the other workers (startSQL).
func (d *Daemon) openSQL(cfg config.Config, loc *time.Location) error {
	if cfg.SQL.Listen != "" {
		users, err := cfg.SQL.ParseSQLUsers()
		if err != nil {
			return err
		}
		d.sql, err = sqlserver.NewServer(d.db, sqlserver.ServerOptions{
			Listen: cfg.SQL.Listen,
			Users:  users,
			Engine: sqlserver.Options{
				Location:     loc,
				QueryTimeout: cfg.SQL.QueryTimeout,
				MaxRows:      int64(cfg.SQL.MaxRows),
				Logger:       d.log.With("component", "sql"),
			},
		})
		if err != nil {
			return err
		}
	}
	if d.opts.Command != nil {
		ln, err := listenCommands(cfg.DataDir)
		if err != nil {
			return err
		}
		run := d.opts.Command
		d.cmds = &commandServer{ln: ln, run: func(ctx context.Context, req CommandRequest, stdout, stderr io.Writer) int {
			d.log.Debug("forwarded command", "component", "cli", "args", req.Args)
			return run(ctx, d.db, req, stdout, stderr)
		}}
	}
	return nil
}

// SQLAddr is the SQL server's address, nil when sql.listen is "".
func (d *Daemon) SQLAddr() net.Addr {
	if d.sql == nil {
		return nil
	}
	return d.sql.Addr()
}

// startSQL runs the SQL server and the command socket as workers.
func (d *Daemon) startSQL() {
	if d.sql != nil {
		srv := d.sql
		d.log.Info("SQL server listening", "component", "sql", "addr", srv.Addr().String())
		d.g.Go(func() error {
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve() }()
			select {
			case err := <-errc:
				if d.gctx.Err() == nil {
					return fmt.Errorf("sql: %w", err)
				}
				return nil
			case <-d.gctx.Done():
			}
			_ = srv.Close()
			<-errc
			return nil
		})
	}
	if d.cmds != nil {
		d.g.Go(func() error { return d.cmds.serve(d.gctx) })
	}
}

// closeSQL closes what openSQL bound but no worker serves (Open failed
// before the workers started), and removes the command socket.
func (d *Daemon) closeSQL() error {
	var errs []error
	if d.sql != nil && d.g == nil {
		errs = append(errs, d.sql.Close())
	}
	if d.cmds != nil {
		if d.g == nil {
			errs = append(errs, d.cmds.ln.Close())
		}
		if err := os.Remove(SocketPath(d.opts.Config.DataDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
