package config

import (
	"slices"
	"testing"
	"time"
)

// TestKeys pins the key list that Load, the environment and Settings share;
// it is derived from Config's mapstructure tags.
func TestKeys(t *testing.T) {
	var got []string
	kinds := map[string]leafKind{}
	for _, l := range leaves() {
		got = append(got, l.key)
		kinds[l.key] = l.kind
	}
	want := []string{
		"data_dir", "log.level", "log.format", "input.timezone", "inbox.dir", "inbox.poll_interval",
		"inbox.settle", "stream.name", "stream.trigger", "stream.max_versions_per_trigger", "stream.max_rows_per_trigger", "windows.sizes", "windows.timezone", "export.dir", "export.schedule",
		"retention.history", "retention.versions", "retention.schedule", "retention.compact",
		"alerts.rules", "alerts.alertmanager.url", "alerts.webhooks", "alerts.max_attempts", "alerts.retry_backoff",
		"reconcile.schedule",
		"http.listen", "sql.listen", "sql.users", "sql.query_timeout", "sql.max_rows", "shutdown_timeout",
	}
	if !slices.Equal(got, want) {
		t.Errorf("keys:\n got %q\nwant %q", got, want)
	}
	for key, kind := range map[string]leafKind{
		"inbox.poll_interval": kindDuration, "inbox.settle": kindDuration, "shutdown_timeout": kindDuration,
		"stream.max_versions_per_trigger": kindInt, "stream.trigger": kindString, "windows.sizes": kindStrings,
		"alerts.rules": kindList, "alerts.webhooks": kindList,
	} {
		if kinds[key] != kind {
			t.Errorf("kind of %s = %d, want %d", key, kinds[key], kind)
		}
	}
	secs := sections()
	for _, s := range []string{"log", "input", "inbox", "stream", "windows", "export", "retention", "alerts", "alerts.alertmanager", "reconcile", "http", "sql"} {
		if !secs[s] {
			t.Errorf("sections() lacks %s", s)
		}
	}
	if len(secs) != 12 {
		t.Errorf("sections() = %v, want 12", secs)
	}
}

// TestExampleListsEveryKey checks that examples/upicdc.yaml documents every key.
func TestExampleListsEveryKey(t *testing.T) {
	settings, err := readFile("../examples/upicdc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]leaf{}
	for _, l := range leaves() {
		known[l.key] = l
	}
	present, errs := checkKeys(settings, "", known, sections())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, l := range leaves() {
		if !slices.Contains(present, l.key) {
			t.Errorf("examples/upicdc.yaml does not list %s", l.key)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"trigger", "trigger", 0},
		{"stream.trigerr", "stream.trigger", 2}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		kind leafKind
		raw  any
		want any
		err  string
	}{
		{kindString, "x", "x", ""},
		{kindString, 2024, "2024", ""},
		{kindString, int64(7), "7", ""},
		{kindString, 1.5, "1.5", ""},
		{kindString, true, nil, `"true" is a boolean, not a string`},
		{kindString, []any{"a"}, nil, `"[a]" is a list, not a string`},
		{kindString, nil, nil, `"<nil>" is empty, not a string`},
		{kindInt, 5, 5, ""},
		{kindInt, int64(5), 5, ""},
		{kindInt, uint64(5), 5, ""},
		{kindInt, float64(25), 25, ""}, // JSON
		{kindInt, " 12 ", 12, ""},
		{kindInt, 2.5, nil, `"2.5" is not a whole number`},
		{kindInt, 1e30, nil, `"1e+30" is out of range`},
		{kindInt, uint64(1) << 63, nil, `"9223372036854775808" is out of range`},
		{kindInt, "0x10", nil, `"0x10" is not a whole number`},
		{kindInt, true, nil, `"true" is a boolean, not a whole number`},
		{kindDuration, "10s", 10 * time.Second, ""},
		{kindDuration, 0, time.Duration(0), ""},
		{kindDuration, 0.0, time.Duration(0), ""},
		{kindDuration, 10, nil, `"10" is not a duration (a duration needs a unit, e.g. "10s")`},
		{kindDuration, "1.5", nil, `"1.5" is not a duration (a duration needs a unit, e.g. "10s")`},
		{kindDuration, "ten", nil, `"ten" is not a duration (e.g. "10s", "1m30s", "500ms")`},
		{kindDuration, map[string]any{}, nil, `"map[]" is a section, not a duration`},
	} {
		got, err := leaf{kind: tc.kind}.convert(tc.raw)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("convert(%d, %#v) error = %v, want %s", tc.kind, tc.raw, err, tc.err)
			}
		case err != nil:
			t.Errorf("convert(%d, %#v): %v", tc.kind, tc.raw, err)
		case got != tc.want:
			t.Errorf("convert(%d, %#v) = %#v, want %#v", tc.kind, tc.raw, got, tc.want)
		}
	}
}
