// Command upicdc MERGEs UPI transaction batch files into a versioned table
// with a change data feed and keeps exactly-once merchant aggregates.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	// The zone database, built in: input.timezone must work on minimal hosts
	// and containers that ship no /usr/share/zoneinfo.
	_ "time/tzdata"
)

// gcPercent is the garbage collector's target unless GOGC says otherwise.
// A micro-batch and a MERGE hold large, long-lived buffers (up to a million
// transactions); Go's default of 100 lets the heap reach twice what is
// live. At 50, a catch-up over 12M change rows peaked at 430 MB instead of
// 520-535 MB resident, for about 15% more CPU.
const gcPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
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
