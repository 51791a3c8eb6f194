package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
)

// Read commands work while `serve` holds the store: the CLI finds the
// daemon's Unix socket in the data dir and forwards its command line; the
// daemon runs the same command against its open store and streams back
// what it prints and its exit status, so the output is the same byte for
// byte.

// forwarded are the commands that run inside serve when it holds the store.
var forwarded = map[string]bool{
	"aggregates": true, "windows": true, "history": true, "changes": true, "txn": true, "stale": true,
	"sql": true, "reconcile": true, "check": true, "export": true,
}

// argvKey is the context key of the command line's arguments (execute
// sets it), which a forwarded command sends as they are.
type argvKey struct{}

// exitStatus is a forwarded command's non-zero exit status: what it had to
// say is on stderr already.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// forwardReads makes the read commands forward to serve when it runs.
func (a *app) forwardReads(root *cobra.Command) {
	for _, cmd := range root.Commands() {
		if !forwarded[cmd.Name()] || cmd.RunE == nil {
			continue
		}
		run := cmd.RunE
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if a.shared != nil {
				return run(cmd, args) // running inside serve already
			}
			err := a.forward(cmd)
			if !errors.Is(err, daemon.ErrNoDaemon) {
				return err
			}
			err = run(cmd, args)
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("%w; no `upicdc serve` answers on %s either (is the process holding it another command?)", err, daemon.SocketPath(a.cfg.DataDir))
			}
			return err
		}
	}
	// ingest writes: while serve runs, the inbox is the way in.
	if cmd, _, err := root.Find([]string{"ingest"}); err == nil && cmd.RunE != nil {
		run := cmd.RunE
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("%w: `upicdc serve` holds the store; drop the files into its inbox (%s) instead, or stop serve first", err, a.cfg.InboxDir())
			}
			return err
		}
	}
}

// forward runs the command line in the daemon serving the data dir. It
// returns daemon.ErrNoDaemon when none answers.
func (a *app) forward(cmd *cobra.Command) error {
	args, _ := cmd.Context().Value(argvKey{}).([]string)
	dir, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("forward to upicdc serve: %w", err)
	}
	code, err := daemon.Forward(cmd.Context(), a.cfg.DataDir, daemon.CommandRequest{Args: args, Environ: a.environ, Dir: dir}, a.stdout, a.stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus{code}
	}
	return nil
}

// runForwarded is serve's daemon.CommandFunc: it runs a forwarded command
// line against the daemon's store, as the CLI would on a stopped store.
func runForwarded(ctx context.Context, db *store.DB, req daemon.CommandRequest, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, environ: req.Environ, shared: db, dir: req.Dir}
	root := newRoot(a)
	name := firstCommandWord(root, req.Args)
	if !forwarded[name] {
		fmt.Fprintf(stderr, "upicdc: %q does not run through upicdc serve\n", name)
		return 2
	}
	if err := execute(ctx, root, req.Args); err != nil {
		fmt.Fprintf(stderr, "upicdc: %s\n", oneLine(err))
		return exitCode(err)
	}
	return 0
}
