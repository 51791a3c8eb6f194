package daemon_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon"
)

// ExampleDaemon embeds the daemon: the same thing `upicdc serve` runs.
func ExampleDaemon() {
	dir, err := os.MkdirTemp("", "upicdc-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Listen = "127.0.0.1:0" // any free port; d.Addr() says which
	cfg.SQL.Listen = "127.0.0.1:0"
	cfg.Stream.Trigger = "0s" // aggregate as soon as a file is committed

	d := daemon.New(daemon.Options{Config: cfg})
	if err := d.Open(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Batch files renamed into cfg.InboxDir() are now MERGEd, moved to
	// processed/ and aggregated; the API serves http://<d.Addr()>/api/v1/...
	st, err := d.Status()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trigger:", st.Stream.Trigger, "inbox backlog:", st.Inbox.BacklogFiles)
	if err := d.Close(); err != nil {
		log.Fatal(err)
	}
	// Output: trigger: 0s inbox backlog: 0
}
