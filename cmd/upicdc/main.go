// Command upicdc MERGEs UPI transaction batch files into a versioned table
// with a change data feed and keeps exactly-once merchant aggregates.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	// The zone database, built in: input.timezone must work on minimal hosts
	// and containers that ship no /usr/share/zoneinfo.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCommand(os.Stdout, os.Stderr, os.Environ())
	err := execute(ctx, root, os.Args[1:])
	stop()
	if err != nil {
		if _, done := err.(exitStatus); !done { // a forwarded command printed its error already
			fmt.Fprintf(os.Stderr, "upicdc: %s\n", oneLine(err))
		}
		os.Exit(exitCode(err))
	}
}
