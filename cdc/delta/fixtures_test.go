package delta_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc/delta"
)

// fixture returns a copy of a table of ../shared/fixtures/delta (beside the
// repo, where CI has it), skipping the test when that folder is absent. As
// the fixtures' EXPECTED.md prescribe for Spark-like _commit_timestamp (git
// keeps no mtimes), each commit file's mtime is set to its
// commitInfo.timestamp: what the writing engine saw when it committed.
func fixture(t *testing.T, name string) *delta.Table {
	t.Helper()
	root := filepath.Join("..", "..", "..", "shared", "fixtures", "delta")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("Delta fixtures not found at %s", root)
	}
	dir := copyTable(t, filepath.Join(root, name))
	setCommitMtimes(t, dir, nil)
	tbl, err := delta.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// copyTable copies a table directory into a temporary one.
func copyTable(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// setCommitMtimes sets each _delta_log/<v>.json's mtime: to mtimes[v] (ms)
// when given, else to the commit's commitInfo.timestamp.
func setCommitMtimes(t *testing.T, dir string, mtimes map[int64]int64) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "_delta_log", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		v, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(p), ".json"), 10, 64)
		if err != nil {
			continue
		}
		ms, ok := mtimes[v]
		if !ok {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(data), "\n") {
				var a struct {
					CommitInfo *struct {
						Timestamp int64 `json:"timestamp"`
					} `json:"commitInfo"`
				}
				if json.Unmarshal([]byte(line), &a) == nil && a.CommitInfo != nil {
					ms, ok = a.CommitInfo.Timestamp, true
				}
			}
		}
		if !ok {
			continue
		}
		if err := os.Chtimes(p, time.UnixMilli(ms), time.UnixMilli(ms)); err != nil {
			t.Fatal(err)
		}
	}
}

func rowText(r delta.Row) string {
	parts := make([]string, len(r))
	for i, v := range r {
		if v == nil {
			parts[i] = "null"
		} else {
			parts[i] = delta.FormatValue(v)
		}
	}
	return strings.Join(parts, "|")
}

// snapshotRows reads a snapshot's rows as sorted text lines.
func snapshotRows(t *testing.T, tbl *delta.Table, version int64) (*delta.Snapshot, []string) {
	t.Helper()
	s, err := tbl.Snapshot(version)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.Rows(context.Background(), func(r delta.Row) error {
		got = append(got, rowText(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return s, got
}

func commitTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000")
}

// changeRows reads a change feed as sorted "values|type|version|timestamp" lines.
func changeRows(t *testing.T, tbl *delta.Table, from, to int64) []string {
	t.Helper()
	var got []string
	_, err := tbl.Changes(context.Background(), from, to, func(c delta.Change) error {
		got = append(got, rowText(c.Row)+"|"+c.ChangeType+"|"+strconv.FormatInt(c.Version, 10)+"|"+commitTime(c.Timestamp))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	want = sorted(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got (%d):\n  %s\nwant (%d):\n  %s", what, len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
}

func TestFixtureBasicCheckpoint(t *testing.T) {
	tbl := fixture(t, "basic-with-inserts-deletes-checkpoint")
	latest, err := tbl.LatestVersion()
	if err != nil || latest != 13 {
		t.Fatalf("latest = %d, %v; want 13", latest, err)
	}
	ids := func(ranges ...[2]int) []string {
		var out []string
		for _, r := range ranges {
			for i := r[0]; i <= r[1]; i++ {
				out = append(out, strconv.Itoa(i))
			}
		}
		return out
	}
	s, got := snapshotRows(t, tbl, 13)
	equalLines(t, "rows at 13", got, ids([2]int{0, 4}, [2]int{10, 14}, [2]int{20, 24}, [2]int{30, 34}, [2]int{40, 44}, [2]int{50, 65}))
	if s.Checkpoint != 10 || len(got) != 41 {
		t.Errorf("v13: checkpoint %d, %d rows; want checkpoint 10, 41 rows", s.Checkpoint, len(got))
	}
	if got := s.Schema.Names(); !slices.Equal(got, []string{"id"}) || s.Schema[0].Type != "long" {
		t.Errorf("schema = %+v", s.Schema)
	}
	s, got = snapshotRows(t, tbl, 10)
	equalLines(t, "rows at 10", got, ids([2]int{0, 4}, [2]int{10, 14}, [2]int{20, 24}, [2]int{30, 34}, [2]int{40, 44}, [2]int{50, 59}))
	if s.Checkpoint != 10 || len(s.Files) != 6 || len(s.Tombstones) != 5 {
		t.Errorf("v10: checkpoint %d, %d files, %d tombstones; want 10, 6, 5", s.Checkpoint, len(s.Files), len(s.Tombstones))
	}
	s, got = snapshotRows(t, tbl, 5) // before the checkpoint: JSON only
	equalLines(t, "rows at 5", got, ids([2]int{0, 4}, [2]int{10, 49}))
	if s.Checkpoint != -1 {
		t.Errorf("v5 replay started at checkpoint %d", s.Checkpoint)
	}
	lc, ok, err := tbl.LastCheckpoint()
	if err != nil || !ok || lc.Version != 10 || lc.Size != 13 {
		t.Errorf("_last_checkpoint = %+v, %v, %v", lc, ok, err)
	}
	_, err = tbl.Changes(context.Background(), 0, -1, func(delta.Change) error { return nil })
	if !errors.Is(err, delta.ErrChangeDataNotEnabled) {
		t.Errorf("change feed of a non-CDF table: err = %v, want ErrChangeDataNotEnabled", err)
	}
}

func TestFixtureCDCInCommitTimestamps(t *testing.T) {
	tbl := fixture(t, "cdc_ict_table")
	s, got := snapshotRows(t, tbl, 3)
	equalLines(t, "rows at 3", got, []string{"Steve|1986|41", "Kate|1995|37"})
	if s.Protocol.MinWriterVersion != 7 || !slices.Contains(s.Protocol.WriterFeatures, "inCommitTimestamp") {
		t.Errorf("protocol = %+v", s.Protocol)
	}
	if got := s.Schema.Names(); !slices.Equal(got, []string{"name", "birthyear", "age"}) {
		t.Errorf("schema = %v", got)
	}
	equalLines(t, "change feed 0..3", changeRows(t, tbl, 0, -1), []string{
		"Steve|1986|40|insert|1|2023-05-12T06:50:06.883",
		"Kate|1995|36|insert|1|2023-05-12T06:50:06.883",
		"Dave|1995|22|insert|1|2023-05-12T06:50:06.883",
		"Dan|1995|14|insert|1|2023-05-12T06:50:06.883",
		"Dan|1995|14|delete|2|2026-07-12T16:36:52.175",
		"Dave|1995|22|delete|2|2026-07-12T16:36:52.175",
		"Kate|1995|36|update_preimage|3|2026-07-12T16:36:53.881",
		"Kate|1995|37|update_postimage|3|2026-07-12T16:36:53.881",
		"Steve|1986|40|update_preimage|3|2026-07-12T16:36:53.881",
		"Steve|1986|41|update_postimage|3|2026-07-12T16:36:53.881",
	})
}

func TestFixtureCDFPartitioned(t *testing.T) {
	tbl := fixture(t, "cdf-table")
	_, got := snapshotRows(t, tbl, 3)
	equalLines(t, "rows at 3", got, []string{
		"1|Steve|2023-12-22", "2|Bob|2023-12-22", "3|Dave|2023-12-22", "4|Kate|2023-12-22",
		"5|Emily|2023-12-29", "6|Carl|2023-12-29", "8|Claire|2023-12-25", "9|Ada|2023-12-25", "10|Borb|2023-12-25",
	})
	const v0, v1, v2, v3 = "0|2023-12-22T17:10:18.828", "1|2023-12-22T17:10:21.675", "2|2023-12-29T21:41:33.785", "3|2024-01-06T16:44:59.570"
	want := []string{
		"1|Steve|2023-12-22|insert|" + v0, "10|Borb|2023-12-25|insert|" + v0,
		"2|Bob|2023-12-22|update_postimage|" + v1, "2|Bob|2023-12-23|insert|" + v0, "2|Bob|2023-12-23|update_preimage|" + v1,
		"3|Dave|2023-12-22|update_postimage|" + v1, "3|Dave|2023-12-23|insert|" + v0, "3|Dave|2023-12-23|update_preimage|" + v1,
		"4|Kate|2023-12-22|update_postimage|" + v1, "4|Kate|2023-12-23|insert|" + v0, "4|Kate|2023-12-23|update_preimage|" + v1,
		"5|Emily|2023-12-24|insert|" + v0, "5|Emily|2023-12-24|update_preimage|" + v2, "5|Emily|2023-12-29|update_postimage|" + v2,
		"6|Carl|2023-12-24|insert|" + v0, "6|Carl|2023-12-24|update_preimage|" + v2, "6|Carl|2023-12-29|update_postimage|" + v2,
		"7|Dennis|2023-12-24|insert|" + v0, "7|Dennis|2023-12-24|update_preimage|" + v2, "7|Dennis|2023-12-29|delete|" + v3,
		"7|Dennis|2023-12-29|update_postimage|" + v2,
		"8|Claire|2023-12-25|insert|" + v0, "9|Ada|2023-12-25|insert|" + v0,
	}
	equalLines(t, "change feed 0..3", changeRows(t, tbl, 0, -1), want)
	var upTo1 []string
	for _, w := range want {
		if strings.Contains(w, "|"+v0) || strings.Contains(w, "|"+v1) {
			upTo1 = append(upTo1, w)
		}
	}
	if len(upTo1) != 16 {
		t.Fatalf("test bug: %d rows for versions 0..1", len(upTo1))
	}
	equalLines(t, "change feed 0..1", changeRows(t, tbl, 0, 1), upTo1)
	_, err := tbl.Changes(context.Background(), 4, -1, func(delta.Change) error { return nil })
	if !errors.Is(err, delta.ErrVersionNotFound) {
		t.Errorf("start 4 > latest 3: err = %v, want ErrVersionNotFound", err)
	}
}

func TestFixtureCDFNonPartitioned(t *testing.T) {
	tbl := fixture(t, "cdf-table-non-partitioned")
	const tail = "|true|3.14|1"
	_, got := snapshotRows(t, tbl, 4)
	equalLines(t, "rows at 4", got, []string{
		"1|Steve|2024-04-14|1" + tail, "2|Bob|2024-04-14|1" + tail, "3|Dave|2024-04-14|2" + tail,
		"4|Kate|2024-04-14|3" + tail, "5|Emily|2024-04-14|4" + tail, "6|Carl|2024-04-14|5" + tail,
		"8|Claire|2024-04-17|7" + tail, "9|Ada|2024-04-17|8" + tail, "10|Borb|2024-04-17|99999999999999999" + tail,
		"1|Alex|2024-04-14|1" + tail, "2|Alan|2024-04-15|1" + tail,
	})
	const v0, v1, v2, v3, v4 = "0|2024-04-14T15:58:26.249", "1|2024-04-14T15:58:29.393", "2|2024-04-14T15:58:31.257", "3|2024-04-14T15:58:32.495", "4|2024-04-14T15:58:33.444"
	row := func(id, name, bday, long, typ, ver string) string {
		return id + "|" + name + "|" + bday + "|" + long + tail + "|" + typ + "|" + ver
	}
	want := []string{
		row("7", "Dennis", "2024-04-14", "6", "delete", v3),
		row("3", "Dave", "2024-04-15", "2", "update_preimage", v1), row("3", "Dave", "2024-04-14", "2", "update_postimage", v1),
		row("4", "Kate", "2024-04-15", "3", "update_preimage", v1), row("4", "Kate", "2024-04-14", "3", "update_postimage", v1),
		row("2", "Bob", "2024-04-15", "1", "update_preimage", v1), row("2", "Bob", "2024-04-14", "1", "update_postimage", v1),
		row("7", "Dennis", "2024-04-16", "6", "update_preimage", v2), row("7", "Dennis", "2024-04-14", "6", "update_postimage", v2),
		row("5", "Emily", "2024-04-16", "4", "update_preimage", v2), row("5", "Emily", "2024-04-14", "4", "update_postimage", v2),
		row("6", "Carl", "2024-04-16", "5", "update_preimage", v2), row("6", "Carl", "2024-04-14", "5", "update_postimage", v2),
		row("1", "Steve", "2024-04-14", "1", "insert", v0), row("2", "Bob", "2024-04-15", "1", "insert", v0),
		row("3", "Dave", "2024-04-15", "2", "insert", v0), row("4", "Kate", "2024-04-15", "3", "insert", v0),
		row("5", "Emily", "2024-04-16", "4", "insert", v0), row("6", "Carl", "2024-04-16", "5", "insert", v0),
		row("7", "Dennis", "2024-04-16", "6", "insert", v0), row("8", "Claire", "2024-04-17", "7", "insert", v0),
		row("9", "Ada", "2024-04-17", "8", "insert", v0), row("10", "Borb", "2024-04-17", "99999999999999999", "insert", v0),
	}
	equalLines(t, "change feed 0..3", changeRows(t, tbl, 0, 3), want)
	want = append(want, row("1", "Alex", "2024-04-14", "1", "insert", v4), row("2", "Alan", "2024-04-15", "1", "insert", v4))
	equalLines(t, "change feed 0..4", changeRows(t, tbl, 0, -1), want)

	for _, tc := range []struct {
		name     string
		from, to int64
		want     error
	}{
		{"from after to", 4, 1, delta.ErrInvalidRange},
		{"from after latest", 5, -1, delta.ErrVersionNotFound},
		{"to after latest", 0, 9, delta.ErrVersionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tbl.Changes(context.Background(), tc.from, tc.to, func(delta.Change) error { return nil })
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFixtureCheckpointCDF(t *testing.T) {
	tbl := fixture(t, "checkpoint-cdf-table")
	s, got := snapshotRows(t, tbl, -1)
	if s.Version != 5 || s.Checkpoint != 3 {
		t.Errorf("version %d from checkpoint %d; want 5 from 3", s.Version, s.Checkpoint)
	}
	equalLines(t, "rows at 5", got, []string{
		"1|Steve|2023-12-22", "2|Bob|2023-12-22", "3|Dave|2023-12-22", "4|Kate|2023-12-22",
		"5|Emily|2023-12-29", "6|Carl|2023-12-29", "8|Claire|2023-12-25", "9|Ada|2023-12-25",
		"10|Borb|2023-12-25", "12|Ossama|2024-12-30", "13|Nick|2023-12-29", "14|Ryan|2023-12-22", "15|Zach|2023-12-25",
	})
	const v3, v4, v5 = "3|2024-01-06T16:44:59.570", "4|2025-01-06T16:33:18.167", "5|2025-01-06T16:38:19.623"
	equalLines(t, "change feed 3..5", changeRows(t, tbl, 3, -1), []string{
		"11|Ossama|2024-12-30|insert|" + v4, "11|Ossama|2024-12-30|update_preimage|" + v5,
		"12|Nick|2023-12-29|insert|" + v4, "12|Nick|2023-12-29|update_preimage|" + v5,
		"12|Ossama|2024-12-30|update_postimage|" + v5, "13|Nick|2023-12-29|update_postimage|" + v5,
		"13|Ryan|2023-12-22|insert|" + v4, "13|Ryan|2023-12-22|update_preimage|" + v5,
		"14|Ryan|2023-12-22|update_postimage|" + v5, "14|Zach|2023-12-25|insert|" + v4,
		"14|Zach|2023-12-25|update_preimage|" + v5, "15|Zach|2023-12-25|update_postimage|" + v5,
		"7|Dennis|2023-12-29|delete|" + v3,
	})
	for _, from := range []int64{0, 1, 2} {
		_, err := tbl.Changes(context.Background(), from, -1, func(delta.Change) error { return nil })
		if !errors.Is(err, delta.ErrVersionNotFound) {
			t.Errorf("change feed from %d (log cleaned): err = %v, want ErrVersionNotFound", from, err)
		}
	}
	if _, err := tbl.Snapshot(2); !errors.Is(err, delta.ErrVersionNotFound) {
		t.Errorf("snapshot 2 (log cleaned): err = %v, want ErrVersionNotFound", err)
	}
}

func TestFixtureDelta020(t *testing.T) {
	tbl := fixture(t, "delta-0.2.0")
	paths := func(s *delta.Snapshot) []string {
		var out []string
		for _, f := range s.Files {
			out = append(out, f.Path)
		}
		return out
	}
	for _, tc := range []struct {
		version int64
		files   []string
		rows    []string
	}{
		{0, []string{"part-00000-b44fcdb0-8b06-4f3a-8606-f8311a96f6dc-c000.snappy.parquet", "part-00001-185eca06-e017-4dea-ae49-fc48b973e37e-c000.snappy.parquet"}, nil},
		{2, []string{"part-00000-7c2deba3-1994-4fb8-bc07-d46c948aa415-c000.snappy.parquet", "part-00001-c373a5bd-85f0-4758-815e-7eb62007a15c-c000.snappy.parquet"}, []string{"1", "2", "3"}},
		{3, []string{"part-00000-cb6b150b-30b8-4662-ad28-ff32ddab96d2-c000.snappy.parquet", "part-00000-7c2deba3-1994-4fb8-bc07-d46c948aa415-c000.snappy.parquet", "part-00001-c373a5bd-85f0-4758-815e-7eb62007a15c-c000.snappy.parquet"}, []string{"1", "1", "2", "2", "3", "3"}},
	} {
		t.Run(strconv.FormatInt(tc.version, 10), func(t *testing.T) {
			s, got := snapshotRows(t, tbl, tc.version)
			equalLines(t, "files", paths(s), tc.files)
			if tc.rows != nil {
				equalLines(t, "rows", got, tc.rows)
			}
		})
	}
	s, err := tbl.Snapshot(-1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 3 || s.Checkpoint != 3 || s.Protocol.MinReaderVersion != 1 || s.Protocol.MinWriterVersion != 2 || len(s.Tombstones) != 4 {
		t.Errorf("latest: version %d checkpoint %d protocol %+v tombstones %d", s.Version, s.Checkpoint, s.Protocol, len(s.Tombstones))
	}
	txn, ok := s.Txns["e4a20b59-dd0e-4c50-b074-e8ae4786df30"]
	if !ok || txn.Version != 0 || txn.LastUpdated == nil || *txn.LastUpdated != 1564524299648 || len(s.Txns) != 1 {
		t.Errorf("txns = %+v", s.Txns)
	}
}

func TestFixtureTimestampMicros(t *testing.T) {
	tbl := fixture(t, "kernel-timestamp-TIMESTAMP_MICROS")
	s, got := snapshotRows(t, tbl, 0)
	equalLines(t, "rows", got, []string{
		"0|2020-01-01T08:09:10.001Z|2020-02-01T08:09:10Z",
		"1|2021-10-01T08:09:20Z|1999-01-01T09:00:00Z",
		"2|2021-10-01T08:09:20Z|2000-01-01T09:00:00Z",
		"3|1969-01-01T00:00:00Z|1969-01-01T00:00:00Z",
		"4|null|null",
	})
	// The exact microsecond values Kernel asserts.
	want := map[int64][2]int64{0: {1577866150001000, 1580544550000000}, 1: {1633075760000000, 915181200000000}, 3: {-31536000000000, -31536000000000}}
	if err := s.Rows(context.Background(), func(r delta.Row) error {
		w, ok := want[r[0].(int64)]
		if !ok {
			return nil
		}
		if p, tm := r[1].(time.Time).UnixMicro(), r[2].(time.Time).UnixMicro(); p != w[0] || tm != w[1] {
			t.Errorf("id %d: part %d time %d, want %v", r[0], p, tm, w)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestFixtureSimpleWithCDC(t *testing.T) {
	tbl := fixture(t, "simple_table_with_cdc")
	s, got := snapshotRows(t, tbl, -1)
	equalLines(t, "rows", got, []string{"0|Mino"})
	if s.Version != 2 || len(s.Files) != 1 || s.Files[0].Path != "part-00000-7444aec4-710a-4a4c-8abe-3323499043e9.c000.snappy.parquet" {
		t.Errorf("version %d files %+v", s.Version, s.Files)
	}
	if got := s.Schema.Names(); !slices.Equal(got, []string{"id", "name"}) {
		t.Errorf("schema = %v", got)
	}
	equalLines(t, "change feed 0..2", changeRows(t, tbl, 0, -1), []string{
		"0|Mario|insert|1|2022-12-25T10:01:12.835",
		"0|Mario|update_preimage|2|2022-12-25T10:01:15.765",
		"0|Mino|update_postimage|2|2022-12-25T10:01:15.765",
	})
}

func TestFixtureChangesByTime(t *testing.T) {
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	count := func(tbl *delta.Table, start, end int64) (int, error) {
		n := 0
		_, err := tbl.ChangesByTime(context.Background(), start, end, func(delta.Change) error { n++; return nil })
		return n, err
	}
	for _, tc := range []struct {
		name, fixture string
		start, end    string
		want          int
	}{
		// delta-rs test_respect_ict: version 1's in-commit timestamp (2023) is
		// before the start, so its 4 inserts are left out.
		{"in-commit timestamps", "cdc_ict_table", "2026-07-11T16:36:53.881Z", "", 6},
		// delta-rs test_load_vacuumed_table: starts at version 3, after the log cleanup.
		{"after log cleanup", "checkpoint-cdf-table", "2024-01-06T15:44:59.570Z", "", 13},
		// delta-rs test_load_local_datetime: versions 0..1 (10 inserts + 6 update rows).
		{"ending timestamp", "cdf-table", "1970-01-01T00:00:00Z", "2023-12-22T17:10:21.675Z", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end := int64(-1)
			if tc.end != "" {
				end = ms(tc.end)
			}
			n, err := count(fixture(t, tc.fixture), ms(tc.start), end)
			if err != nil || n != tc.want {
				t.Errorf("%d rows, %v; want %d", n, err, tc.want)
			}
		})
	}
	t.Run("start after the latest commit", func(t *testing.T) {
		_, err := count(fixture(t, "cdf-table-non-partitioned"), ms("2033-12-22T17:10:21.675Z"), -1)
		if !errors.Is(err, delta.ErrVersionNotFound) {
			t.Errorf("err = %v, want ErrVersionNotFound", err)
		}
	})
}
