package cdc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

const header = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,op\n"

// env is a real store in a temp dir plus a merger writing to it.
type env struct {
	t   *testing.T
	dir string
	db  *store.DB
	m   *cdc.Merger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	db := storetest.Open(t, filepath.Join(dir, "data"), cdc.RawDef())
	return &env{t: t, dir: dir, db: db, m: cdc.NewMerger(db, cdc.ParseOptions{}, nil)}
}

// file writes a batch file and returns its path.
func (e *env) file(name, body string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) ingest(name, body string) cdc.Result {
	e.t.Helper()
	res, err := e.m.IngestFile(context.Background(), e.file(name, body))
	if err != nil {
		e.t.Fatalf("ingest %s: %v", name, err)
	}
	return res
}

// changes returns version v's change rows as "type id status" strings.
func (e *env) changes(v int64) []string {
	e.t.Helper()
	var out []string
	err := cdc.RawChanges(context.Background(), e.db, v, v, func(c cdc.Change) error {
		if c.Version != v {
			e.t.Errorf("change of version %d in range %d..%d", c.Version, v, v)
		}
		out = append(out, c.Type.String()+" "+c.Row.TransactionID+" "+c.Row.Status.String()+" "+c.Row.Amount.String())
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) rows() map[string]cdc.Row {
	e.t.Helper()
	out := map[string]cdc.Row{}
	if _, err := cdc.ScanRows(context.Background(), e.db, -1, func(r cdc.Row) error {
		out[r.TransactionID] = r
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) latest() int64 {
	e.t.Helper()
	v, err := e.db.LatestVersion(cdc.RawTable)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func TestMergeRules(t *testing.T) {
	t.Run("insert then update writes insert and pre/post images", func(t *testing.T) {
		e := newEnv(t)
		r1 := e.ingest("b1.csv", header+"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n")
		r2 := e.ingest("b2.csv", header+"T1,u@b,M1,500,2024-12-21 10:15:00,completed,\n")
		if r1.Version != 1 || r2.Version != 2 {
			t.Fatalf("versions %d, %d; want 1, 2", r1.Version, r2.Version)
		}
		equal(t, "v1", e.changes(1), []string{"insert T1 initiated 500"})
		equal(t, "v2", e.changes(2), []string{"update_preimage T1 initiated 500", "update_postimage T1 completed 500"})
		if r2.Stats.Updated != 1 || r2.Stats.Inserted != 0 {
			t.Errorf("stats %+v", r2.Stats)
		}
	})

	t.Run("stale row is skipped, counted and listed", func(t *testing.T) {
		e := newEnv(t)
		e.ingest("b1.csv", header+"T1,u@b,M1,500,2024-12-21 10:15:00,completed,\n")
		r := e.ingest("b2.csv", header+"T2,u@b,M2,1,2024-12-21 09:00:00,initiated,\nT1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n")
		if r.Stats.Stale != 1 || r.Stats.Inserted != 1 {
			t.Errorf("stats %+v, want 1 stale 1 inserted", r.Stats)
		}
		if got := e.rows()["T1"].Status; got != cdc.StatusCompleted {
			t.Errorf("T1 rolled back to %s", got)
		}
		equal(t, "v2", e.changes(2), []string{"insert T2 initiated 1"})
		stale, err := cdc.StaleRows(context.Background(), e.db, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) != 1 || stale[0].Pos != 3 || stale[0].Row.TransactionID != "T1" || stale[0].StoredTime != e.rows()["T1"].Time {
			t.Errorf("stale rows %+v", stale)
		}
	})

	t.Run("identical row is a no-op without change rows", func(t *testing.T) {
		e := newEnv(t)
		e.ingest("b1.csv", header+"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n")
		r := e.ingest("b2.csv", header+"T1,u@b,M1,500.00,2024-12-21 10:00:00,INITIATED,\n")
		if r.Stats.NoOp != 1 || r.Version != 2 {
			t.Errorf("result %+v, want one no-op in version 2", r)
		}
		equal(t, "v2", e.changes(2), nil)
	})

	t.Run("same time different content is applied", func(t *testing.T) {
		e := newEnv(t)
		e.ingest("b1.csv", header+"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n")
		e.ingest("b2.csv", header+"T1,u@b,M1,500,2024-12-21 10:00:00,failed,\n")
		equal(t, "v2", e.changes(2), []string{"update_preimage T1 initiated 500", "update_postimage T1 failed 500"})
	})

	t.Run("resend of the same content under another name applies nothing", func(t *testing.T) {
		e := newEnv(t)
		body := header + "T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n"
		e.ingest("b1.csv", body)
		r := e.ingest("renamed-copy.csv", body)
		if !r.Duplicate || r.Previous.Name != "b1.csv" || r.Previous.Version != 1 || r.Version != 0 {
			t.Errorf("result %+v, want duplicate of b1.csv version 1", r)
		}
		if v := e.latest(); v != 1 {
			t.Errorf("latest version %d, want 1", v)
		}
		// Merge of an already-parsed batch with known content: same answer.
		res, err := e.m.Merge(context.Background(), &cdc.Batch{Name: "x.csv", SHA256: sha(body), Rows: []cdc.Input{{Pos: 2, Op: cdc.OpUpsert, Row: cdc.Row{TransactionID: "T9", UPIID: "u", MerchantID: "M", Status: cdc.StatusFailed}}}})
		if err != nil || !res.Duplicate {
			t.Errorf("Merge of known content: %+v, %v", res, err)
		}
	})

	t.Run("delete writes the last image and a stale resend cannot resurrect", func(t *testing.T) {
		e := newEnv(t)
		e.ingest("b1.csv", header+"T1,u@b,M1,500,2024-12-21 10:00:00,completed,\n")
		r := e.ingest("b2.csv", header+"T1,,,,2024-12-21 11:00:00,,delete\n")
		if r.Stats.Deleted != 1 {
			t.Errorf("stats %+v", r.Stats)
		}
		equal(t, "v2", e.changes(2), []string{"delete T1 completed 500"})
		if _, ok := e.rows()["T1"]; ok {
			t.Error("T1 still live after delete")
		}
		r = e.ingest("b3.csv", header+"T1,u@b,M1,500,2024-12-21 10:30:00,refunded,\n")
		if r.Stats.Stale != 1 {
			t.Errorf("resend older than the delete: stats %+v, want stale", r.Stats)
		}
		r = e.ingest("b4.csv", header+"T1,u@b,M1,700,2024-12-21 12:00:00,initiated,\nT2,,,,2024-12-21 12:00:00,,delete\n")
		if r.Stats.Inserted != 1 || r.Stats.NoOp != 1 {
			t.Errorf("re-insert after delete + delete of unknown: stats %+v", r.Stats)
		}
		equal(t, "v4", e.changes(4), []string{"insert T1 initiated 700"})
		h, err := cdc.TxnHistory(e.db, "T1")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range h {
			got = append(got, strings.Join([]string{itoa(v.Version), v.Row.Status.String(), map[bool]string{true: "deleted", false: "live"}[v.Deleted]}, " "))
		}
		equal(t, "T1 history", got, []string{"1 completed live", "2 completed deleted", "4 initiated live"})
	})

	t.Run("rows of one transaction apply in transaction_time order within a file", func(t *testing.T) {
		e := newEnv(t)
		r := e.ingest("b1.csv", header+
			"T1,u@b,M1,500,2024-12-21 10:30:00,refunded,\n"+
			"T2,u@b,M2,100,2024-12-21 10:00:00,initiated,\n"+
			"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n"+
			"T1,u@b,M1,500,2024-12-21 10:15:00,completed,\n")
		if r.Stats.Inserted != 2 || r.Stats.Updated != 2 || r.Stats.Stale != 0 {
			t.Errorf("stats %+v", r.Stats)
		}
		equal(t, "v1", e.changes(1), []string{
			"insert T1 initiated 500",
			"update_preimage T1 initiated 500", "update_postimage T1 completed 500",
			"update_preimage T1 completed 500", "update_postimage T1 refunded 500",
			"insert T2 initiated 100",
		})
		h, err := cdc.TxnHistory(e.db, "T1")
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 3 || h[2].Step != 2 || h[2].Row.Status != cdc.StatusRefunded {
			t.Errorf("T1 history %+v", h)
		}
	})

	t.Run("equal times keep file order", func(t *testing.T) {
		e := newEnv(t)
		e.ingest("b1.csv", header+
			"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n"+
			"T1,u@b,M1,500,2024-12-21 10:00:00,failed,\n")
		if got := e.rows()["T1"].Status; got != cdc.StatusFailed {
			t.Errorf("status %s, want the later line's failed", got)
		}
	})

	t.Run("header-only file is a harmless no-op", func(t *testing.T) {
		e := newEnv(t)
		r := e.ingest("empty.csv", header)
		if !r.Empty || r.Version != 0 || e.latest() != 0 {
			t.Errorf("result %+v latest %d", r, e.latest())
		}
	})

	t.Run("change rows carry commit version and timestamp", func(t *testing.T) {
		e := newEnv(t)
		e.ingest("b1.csv", header+"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,\n")
		e.ingest("b2.csv", header+"T1,u@b,M1,500,2024-12-21 10:10:00,completed,\nT2,u@b,M1,5,2024-12-21 10:10:00,initiated,\n")
		hist, err := e.db.History(cdc.RawTable)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = cdc.RawChanges(context.Background(), e.db, 0, -1, func(c cdc.Change) error {
			n++
			if c.Timestamp != hist[c.Version].Timestamp {
				t.Errorf("change %+v: timestamp %d, commit says %d", c, c.Timestamp, hist[c.Version].Timestamp)
			}
			return nil
		})
		if err != nil || n != 4 {
			t.Errorf("changes: %d rows, %v", n, err)
		}
		if hist[1].Timestamp >= hist[2].Timestamp {
			t.Errorf("commit timestamps not increasing: %d, %d", hist[1].Timestamp, hist[2].Timestamp)
		}
		if hist[2].Source == nil || hist[2].Source.Name != "b2.csv" || len(hist[2].Source.SHA256) != 64 {
			t.Errorf("commit source %+v", hist[2].Source)
		}
		if _, err := cdc.StaleRows(context.Background(), e.db, 9); !errors.Is(err, store.ErrVersionNotFound) {
			t.Errorf("stale rows of a missing version: %v", err)
		}
	})
}

// TestBadFilesChangeNothing: every refused file names file, line and field,
// and leaves the store exactly as it was.
func TestBadFilesChangeNothing(t *testing.T) {
	cases := []struct {
		name, file, body string
		want             []string // substrings of the error
	}{
		{"bad amount", "amt.csv", header + "T1,u@b,M1,12.345,2024-12-21 10:00:00,initiated,\n", []string{"amt.csv", "line 2", "transaction_amount"}},
		{"negative amount", "neg.csv", header + "T1,u@b,M1,5,2024-12-21 10:00:00,initiated,\nT2,u@b,M1,-5,2024-12-21 10:00:00,initiated,\n", []string{"neg.csv", "line 3", "transaction_amount"}},
		{"unknown status", "st.csv", header + "T1,u@b,M1,5,2024-12-21 10:00:00,pending,\n", []string{"st.csv", "line 2", "transaction_status", "pending"}},
		{"missing column", "col.csv", "transaction_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT1,M1,5,2024-12-21 10:00:00,initiated\n", []string{"col.csv", "line 1", "upi_id"}},
		{"bad time", "time.csv", header + "T1,u@b,M1,5,21/12/2024 10:00,initiated,\n", []string{"time.csv", "line 2", "transaction_time"}},
		{"zero-byte file", "zero.csv", "", []string{"zero.csv", "empty"}},
		{"non-UTF-8", "latin1.csv", header + "T1,u\xe9@b,M1,5,2024-12-21 10:00:00,initiated,\n", []string{"latin1.csv", "line 2", "upi_id"}},
		{"bad jsonl", "b.jsonl", `{"transaction_id":"T1","upi_id":"u","merchant_id":"M","transaction_amount":"x","transaction_time":"2024-12-21 10:00:00","transaction_status":"initiated"}` + "\n", []string{"b.jsonl", "line 1", "transaction_amount"}},
		{"unsupported extension", "b.xlsx", "whatever", []string{"b.xlsx"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.ingest("good.csv", header+"T0,u@b,M0,1,2024-12-21 09:00:00,initiated,\n")
			before := e.changes(1)
			_, err := e.m.IngestFile(context.Background(), e.file(tc.file, tc.body))
			if err == nil {
				t.Fatal("bad file accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if v := e.latest(); v != 1 {
				t.Errorf("latest version %d after a refused file, want 1", v)
			}
			equal(t, "version 1 unchanged", e.changes(1), before)
			if files, _ := e.db.Files(); len(files) != 1 {
				t.Errorf("ledger has %d files, want 1", len(files))
			}
		})
	}
}
