package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/daemon/httpapi"
)

// events reads a daemon's /api/v1/events: the hello's versions, then each
// commit event as it comes.
func events(t *testing.T, d *daemon.Daemon) (map[string]int64, <-chan httpapi.Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.Addr().String()+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	next := func() (name, data string, err error) {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return "", "", err
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case line == "" && name != "":
				return name, data, nil
			}
		}
	}
	name, data, err := next()
	var hello struct{ Tables map[string]int64 }
	if err != nil || name != "hello" || json.Unmarshal([]byte(data), &hello) != nil {
		t.Fatalf("first event %q %q (%v), want hello", name, data, err)
	}
	out := make(chan httpapi.Event, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		for {
			name, data, err := next()
			if err != nil {
				return
			}
			var ev httpapi.Event
			if name == "commit" && json.Unmarshal([]byte(data), &ev) == nil {
				out <- ev
			}
		}
	}()
	return hello.Tables, out
}

// TestEventsFollowCommits: one event per committed version of each table,
// the MERGE's and the micro-batch's, pushed as they commit.
func TestEventsFollowCommits(t *testing.T) {
	cfg := testConfig(t)
	d := start(t, daemon.Options{Config: cfg})
	settled(t, d)
	hello, evs := events(t, d)
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if hello[cdc.RawTable] != 0 || len(hello) != len(st.Tables) {
		t.Fatalf("hello %v, want every table (%d) at version 0", hello, len(st.Tables))
	}
	if err := os.MkdirAll(cfg.InboxDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	var got []string
	perFile := len(st.Tables) // the raw table's MERGE, then every derived table's micro-batch version
	for i, b := range []string{"batch1.csv", "batch2.csv"} {
		drop(t, cfg.InboxDir(), b, read(t, batches+b), time.Time{})
		for range perFile {
			select {
			case ev, ok := <-evs:
				if !ok {
					t.Fatal("stream ended")
				}
				if ev.Time.IsZero() || ev.Operation == "" {
					t.Errorf("event %+v lacks its commit's time or operation", ev)
				}
				got = append(got, ev.Table+"@"+string(rune('0'+ev.Version)))
			case <-time.After(30 * time.Second):
				t.Fatalf("batch %d: events so far %v", i+1, got)
			}
		}
	}
	var want []string
	for v := 1; v <= 2; v++ {
		for _, tb := range st.Tables {
			want = append(want, tb.Name+"@"+string(rune('0'+v)))
		}
	}
	// Within one file's events the order is the commits' (the MERGE's
	// tables, then the micro-batch's): compare each file's set.
	for i := 0; i+perFile <= len(got) && i+perFile <= len(want); i += perFile {
		slices.Sort(got[i : i+perFile])
		slices.Sort(want[i : i+perFile])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events\n%v\nwant\n%v", got, want)
	}
	// Close ends the open stream instead of waiting for it.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-evs:
		if ok {
			t.Error("an event after close")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream outlived the daemon")
	}
}
