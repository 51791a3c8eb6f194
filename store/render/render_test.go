package render_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// marshal encodes v as the HTTP API does (no HTML escaping).
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func schema(t *testing.T) *store.Schema {
	t.Helper()
	ist, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	return &store.Schema{KeyColumns: 1, Columns: []store.Column{
		{Name: "id", Type: store.String},
		{Name: "amount", Type: store.Money},
		{Name: "count", Type: store.Int},
		{Name: "at_utc", Type: store.Timestamp},
		{Name: "at_local", Type: store.Timestamp, Zone: ist},
		{Name: "status", Type: store.Enum, Enum: []string{"initiated", "completed"}},
		{Name: "ok", Type: store.Bool},
		{Name: "note", Type: store.String, Nullable: true},
	}}
}

func row() store.Row {
	at := time.Date(2024, 12, 21, 10, 15, 0, 0, time.UTC)
	return store.Row{store.S(`T<1>&"x"`), store.M(50050), store.I(-3), store.T(at), store.T(at.Add(500 * time.Microsecond)),
		store.S("completed"), store.B(true), store.Null()}
}

func TestValues(t *testing.T) {
	s := schema(t)
	got := marshal(t, render.RowObject(s, row()))
	want := `{"id":"T<1>&\"x\"","amount":500.50,"count":-3,"at_utc":"2024-12-21T10:15:00Z",` +
		`"at_local":"2024-12-21T15:45:00.0005+05:30","status":"completed","ok":true,"note":null}`
	if string(got) != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	for _, tc := range []struct {
		name string
		p    store.Paise
		want string
	}{{"whole", 50000, "500"}, {"negative", -50000, "-500"}, {"fraction", 50050, "500.50"}, {"paise", -5, "-0.05"}, {"zero", 0, "0"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := render.Money(tc.p)
			j, _ := c.MarshalJSON()
			if c.Text != tc.want || string(j) != tc.want {
				t.Errorf("money %d: text %q json %s, want %s", tc.p, c.Text, j, tc.want)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	s := schema(t)
	tbl := render.Rows(s)
	tbl.Add(render.Row(s, row())...)
	r2 := row()
	r2[0], r2[1], r2[7] = store.S("T2"), store.M(-50000), store.S("a,b")
	tbl.Add(render.Row(s, r2)...)

	var js, cs, tb bytes.Buffer
	for f, b := range map[render.Format]*bytes.Buffer{render.FormatJSON: &js, render.FormatCSV: &cs, render.FormatTable: &tb} {
		if err := tbl.Write(b, f); err != nil {
			t.Fatal(err)
		}
	}
	// JSON: one array, one object per line, each exactly Object.MarshalJSON.
	var objs []json.RawMessage
	if err := json.Unmarshal(js.Bytes(), &objs); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js.String())
	}
	for i, o := range tbl.Objects() {
		want := marshal(t, o)
		if !bytes.Contains(js.Bytes(), append([]byte("\n  "), want...)) {
			t.Errorf("row %d: JSON output lacks %s\n%s", i, want, js.String())
		}
	}
	wantCSV := "id,amount,count,at_utc,at_local,status,ok,note\n" +
		`"T<1>&""x""",500.50,-3,2024-12-21T10:15:00Z,2024-12-21T15:45:00.0005+05:30,completed,true,` + "\n" +
		`T2,-500,-3,2024-12-21T10:15:00Z,2024-12-21T15:45:00.0005+05:30,completed,true,"a,b"` + "\n"
	if cs.String() != wantCSV {
		t.Errorf("CSV\n got %q\nwant %q", cs.String(), wantCSV)
	}
	wantTable := "" +
		"| id       | amount | count | at_utc               | at_local                       | status    | ok   | note |\n" +
		"|----------|--------|-------|----------------------|--------------------------------|-----------|------|------|\n" +
		"| T<1>&\"x\" | 500.50 | -3    | 2024-12-21T10:15:00Z | 2024-12-21T15:45:00.0005+05:30 | completed | true |      |\n" +
		"| T2       | -500   | -3    | 2024-12-21T10:15:00Z | 2024-12-21T15:45:00.0005+05:30 | completed | true | a,b  |\n"
	if tb.String() != wantTable {
		t.Errorf("table\n got:\n%s\nwant:\n%s", tb.String(), wantTable)
	}
	var empty bytes.Buffer
	if err := render.Rows(s).Write(&empty, render.FormatJSON); err != nil || empty.String() != "[]\n" {
		t.Errorf("empty JSON %q, %v", empty.String(), err)
	}
}

func TestChangeAndCommit(t *testing.T) {
	s := schema(t)
	ms := time.Date(2024, 12, 21, 10, 0, 0, 123e6, time.UTC).UnixMilli()
	o := render.Object{Columns: render.ChangeNames(s), Cells: render.Change(s, store.Change{Type: store.UpdatePreimage, Version: 3, Timestamp: ms, Row: row()})}
	got := marshal(t, o)
	if want := `"_change_type":"update_preimage","_commit_version":3,"_commit_timestamp":"2024-12-21T10:00:00.123Z"}`; !bytes.HasSuffix(got, []byte(want)) {
		t.Errorf("change %s, want suffix %s", got, want)
	}

	merge := store.CommitInfo{Version: 1, Timestamp: ms, Operation: "MERGE", OperationParameters: map[string]string{"b": "2", "a": "<1>"},
		OperationMetrics: map[string]int64{"numSourceRows": 3}, Source: &store.Source{Name: "batch1.csv", SHA256: "ab", Size: 9, Format: "csv"}}
	create := store.CommitInfo{Version: 0, Timestamp: ms, Operation: "CREATE TABLE"}
	h := render.History()
	h.Add(render.Commit(merge)...)
	h.Add(render.Commit(create)...)
	objs := h.Objects()
	got0 := marshal(t, objs[0])
	want0 := `{"version":1,"timestamp":"2024-12-21T10:00:00.123Z","operation":"MERGE","operationParameters":{"a":"<1>","b":"2"},` +
		`"operationMetrics":{"numSourceRows":3},"source":{"name":"batch1.csv","sha256":"ab","size":9,"format":"csv"},"txn":null}`
	if string(got0) != want0 {
		t.Errorf("merge commit\n got %s\nwant %s", got0, want0)
	}
	got1 := marshal(t, objs[1])
	want1 := `{"version":0,"timestamp":"2024-12-21T10:00:00.123Z","operation":"CREATE TABLE","operationParameters":{},"operationMetrics":{},"source":null,"txn":null}`
	if string(got1) != want1 {
		t.Errorf("create commit\n got %s\nwant %s", got1, want1)
	}
}

func TestVersion(t *testing.T) {
	s := schema(t)
	at := "at_utc"
	live := render.Version(s, store.RowVersion{Version: 1, Timestamp: 0, Row: row()}, at)
	dead := render.Version(s, store.RowVersion{Version: 2, Step: 1, Timestamp: 0, Deleted: true, DeletedAt: time.Date(2024, 12, 22, 0, 0, 0, 0, time.UTC).UnixMicro(), Row: row()}, at)
	names := render.VersionNames(s)
	for _, tc := range []struct {
		cells []render.Cell
		want  string
	}{
		{live, `{"_commit_version":1,"step":0,"_commit_timestamp":"1970-01-01T00:00:00.000Z","deleted":false,"deleted_at":null,"id"`},
		{dead, `{"_commit_version":2,"step":1,"_commit_timestamp":"1970-01-01T00:00:00.000Z","deleted":true,"deleted_at":"2024-12-22T00:00:00Z","id"`},
	} {
		got := marshal(t, render.Object{Columns: names, Cells: tc.cells})
		if !bytes.HasPrefix(got, []byte(tc.want)) {
			t.Errorf("version\n got %s\nwant prefix %s", got, tc.want)
		}
	}
}

func TestNumberAndFormat(t *testing.T) {
	for in, isNum := range map[string]bool{"500.00": true, "-1.5e3": true, "NaN": false, "Inf": false, "true": false, "": false, "0x10": false} {
		j, _ := render.Number(in).MarshalJSON()
		if got := len(j) > 0 && j[0] != '"'; got != isNum {
			t.Errorf("Number(%q) JSON %s: number=%v, want %v", in, j, got, isNum)
		}
	}
	if _, err := render.ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) accepted")
	}
}
