package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/config"
)

func TestParseTrigger(t *testing.T) {
	for _, tc := range []struct {
		in       string
		kind     config.TriggerKind
		interval time.Duration
		text     string // Trigger.String()
		err      string // error prefix; "" = no error
	}{
		{in: "5s", kind: config.TriggerInterval, interval: 5 * time.Second, text: "5s"},
		{in: "0s", kind: config.TriggerInterval, text: "0s"},
		{in: "0", kind: config.TriggerInterval, text: "0s"},
		{in: "1m30s", kind: config.TriggerInterval, interval: 90 * time.Second, text: "1m30s"},
		{in: "250ms", kind: config.TriggerInterval, interval: 250 * time.Millisecond, text: "250ms"},
		{in: " 5s ", kind: config.TriggerInterval, interval: 5 * time.Second, text: "5s"},
		{in: "availableNow", kind: config.TriggerAvailableNow, text: "availableNow"},
		{in: "AVAILABLENOW", kind: config.TriggerAvailableNow, text: "availableNow"},
		{in: "available_now", kind: config.TriggerAvailableNow, text: "availableNow"},
		{in: "Available-Now", kind: config.TriggerAvailableNow, text: "availableNow"},
		{in: "@every 1m", kind: config.TriggerCron, text: "@every 1m"},
		{in: "@hourly", kind: config.TriggerCron, text: "@hourly"},
		{in: "@daily", kind: config.TriggerCron, text: "@daily"},
		{in: "*/5 * * * *", kind: config.TriggerCron, text: "*/5 * * * *"},
		{in: "0 9-17 * * MON-FRI", kind: config.TriggerCron, text: "0 9-17 * * MON-FRI"},
		{in: "CRON_TZ=Asia/Kolkata 0 9 * * *", kind: config.TriggerCron, text: "CRON_TZ=Asia/Kolkata 0 9 * * *"},
		{in: "5x", err: `"5x" is not a duration, "availableNow" or a cron spec`},
		{in: "", err: `"" is not a duration, "availableNow" or a cron spec (e.g. "5s", "availableNow", "@every 1m")`},
		{in: "5", err: `"5" is not a duration, "availableNow" or a cron spec (a duration needs a unit, e.g. "5s")`},
		{in: "-5s", err: `"-5s" is a negative duration`},
		{in: "-1ns", err: `"-1ns" is a negative duration`},
		{in: "available now", err: `"available now" is not a duration`},
		{in: "* * * *", err: `"* * * *" is not a duration, "availableNow" or a cron spec (cron: expected exactly 5 fields`},
		{in: "0 0 * * * *", err: `"0 0 * * * *" is not a duration, "availableNow" or a cron spec (cron: expected exactly 5 fields`},
		{in: "61 * * * *", err: `"61 * * * *" is not a duration, "availableNow" or a cron spec (cron: `},
		{in: "@every 1.5s", err: `"@every 1.5s" is not a duration, "availableNow" or a cron spec (cron: @every needs a whole number of seconds`},
		{in: "@every 0s", err: `"@every 0s" is not`},
		{in: "@every -1m", err: `"@every -1m" is not`},
		{in: "@sometimes", err: `"@sometimes" is not a duration, "availableNow" or a cron spec (cron: unrecognized descriptor`},
		{in: "CRON_TZ=Asia/Kolkata", err: `"CRON_TZ=Asia/Kolkata" is not a duration, "availableNow" or a cron spec (cron: a CRON_TZ= prefix must be followed`},
		{in: "CRON_TZ=Nowhere/Land * * * * *", err: `"CRON_TZ=Nowhere/Land * * * * *" is not`},
		{in: "0 0 31 2 *", err: `"0 0 31 2 *" is not a duration, "availableNow" or a cron spec (cron: the schedule never fires)`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := config.ParseTrigger(tc.in)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("ParseTrigger(%q) error = %v, want prefix %s", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTrigger(%q): %v", tc.in, err)
			}
			if got.Kind != tc.kind || got.Interval != tc.interval || got.String() != tc.text {
				t.Errorf("ParseTrigger(%q) = %v %v %q, want %v %v %q", tc.in, got.Kind, got.Interval, got.String(), tc.kind, tc.interval, tc.text)
			}
			if (got.Kind == config.TriggerCron) != (got.Schedule != nil) {
				t.Errorf("ParseTrigger(%q): Schedule = %v for kind %v", tc.in, got.Schedule, got.Kind)
			}
		})
	}
}

func TestCronTriggerSchedule(t *testing.T) {
	tr, err := config.ParseTrigger("*/5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2024, 12, 21, 10, 1, 0, 0, time.UTC)
	if got, want := tr.Schedule.Next(from), time.Date(2024, 12, 21, 10, 5, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
}

func TestTriggerKindString(t *testing.T) {
	for k, want := range map[config.TriggerKind]string{
		config.TriggerInterval:     "interval",
		config.TriggerAvailableNow: "availableNow",
		config.TriggerCron:         "cron",
		config.TriggerKind(9):      "TriggerKind(9)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %s, want %s", int(k), got, want)
		}
	}
	if got := (config.Trigger{}).String(); got != "0s" {
		t.Errorf("zero Trigger = %q, want 0s", got)
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		off     bool
	}{
		{in: "", off: true},
		{in: "   ", off: true},
		{in: "@hourly"},
		{in: "@every 6h"},
		{in: "0 2 * * *"},
		{in: "CRON_TZ=Asia/Kolkata 0 2 * * *"},
		{in: "1h", err: `"1h" is not a cron spec (for a fixed interval write "@every 1h")`},
		{in: "nightly", err: `"nightly" is not a cron spec (e.g. "@hourly", "0 2 * * *"): `},
		{in: "0 2 * *", err: `"0 2 * *" is not a cron spec (e.g. "@hourly", "0 2 * * *"): expected exactly 5 fields`},
		{in: "TZ=UTC", err: `"TZ=UTC" is not a cron spec`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := config.ParseSchedule(tc.in)
			switch {
			case tc.err != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Errorf("ParseSchedule(%q) error = %v, want prefix %s", tc.in, err, tc.err)
				}
			case err != nil:
				t.Errorf("ParseSchedule(%q): %v", tc.in, err)
			case (s == nil) != tc.off:
				t.Errorf("ParseSchedule(%q) = %v, want off=%v", tc.in, s, tc.off)
			}
		})
	}
}

// FuzzParseTrigger checks that no input panics and that every accepted
// trigger prints as text that parses back to the same trigger.
func FuzzParseTrigger(f *testing.F) {
	for _, s := range []string{"5s", "0s", "availableNow", "@every 1m", "*/5 * * * *", "CRON_TZ=UTC 0 9 * * 1-5", "TZ=", "-5s", "@every", "0-", "*/0 * * * *", "1-2/3 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := config.ParseTrigger(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `"`) {
				t.Errorf("ParseTrigger(%q) error does not start with the quoted value: %v", s, err)
			}
			return
		}
		back, err := config.ParseTrigger(tr.String())
		if err != nil {
			t.Fatalf("ParseTrigger(%q) = %q, which does not parse: %v", s, tr.String(), err)
		}
		if back.Kind != tr.Kind || back.Interval != tr.Interval || back.Spec != tr.Spec {
			t.Errorf("round trip of %q: %+v != %+v", s, back, tr)
		}
		_, _ = config.ParseSchedule(s)
	})
}
