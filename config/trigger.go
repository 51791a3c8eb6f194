package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// TriggerKind says how the stream processor is triggered.
type TriggerKind int

const (
	// TriggerInterval runs a micro-batch every Interval (processing time);
	// an Interval of 0 runs one as soon as new data arrives.
	TriggerInterval TriggerKind = iota
	// TriggerAvailableNow processes everything available, then stops.
	TriggerAvailableNow
	// TriggerCron runs a micro-batch whenever Schedule fires.
	TriggerCron
)

// String returns the kind's name.
func (k TriggerKind) String() string {
	switch k {
	case TriggerInterval:
		return "interval"
	case TriggerAvailableNow:
		return "availableNow"
	case TriggerCron:
		return "cron"
	default:
		return fmt.Sprintf("TriggerKind(%d)", int(k))
	}
}

// Trigger is a parsed stream.trigger. The zero Trigger is an interval of 0:
// run as soon as data arrives.
type Trigger struct {
	Kind     TriggerKind
	Interval time.Duration // for TriggerInterval
	Spec     string        // for TriggerCron: the spec as written (trimmed)
	Schedule cron.Schedule // for TriggerCron
}

// String returns the trigger in the form ParseTrigger accepts.
func (t Trigger) String() string {
	switch t.Kind {
	case TriggerAvailableNow:
		return "availableNow"
	case TriggerCron:
		return t.Spec
	default:
		return t.Interval.String()
	}
}

// ParseTrigger parses a stream trigger:
//
//   - a Go duration >= 0 ("5s", "1m30s"): a micro-batch every interval;
//     "0s" means as soon as data arrives;
//   - "availableNow" (any case; also "available_now" and "available-now"):
//     process what is there, then stop;
//   - otherwise a standard 5-field cron spec ("*/5 * * * *") or a descriptor
//     ("@hourly", "@every 1m"), optionally prefixed with CRON_TZ=Area/City.
//
// The error starts with the quoted input and says what was expected.
func ParseTrigger(s string) (Trigger, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return Trigger{}, fmt.Errorf("%q is a negative duration; use \"0s\" to run as soon as data arrives", s)
		}
		return Trigger{Kind: TriggerInterval, Interval: d}, nil
	}
	switch strings.ToLower(s) {
	case "availablenow", "available_now", "available-now":
		return Trigger{Kind: TriggerAvailableNow}, nil
	}
	sched, err := parseCron(s)
	if err != nil {
		msg := fmt.Sprintf("%q is not a duration, \"availableNow\" or a cron spec", s)
		switch {
		case s == "":
			msg += ` (e.g. "5s", "availableNow", "@every 1m")`
		case looksLikeCron(s):
			msg += " (cron: " + err.Error() + ")"
		case isDigits(strings.TrimPrefix(s, "-")):
			msg += ` (a duration needs a unit, e.g. "5s")`
		}
		return Trigger{}, errors.New(msg)
	}
	return Trigger{Kind: TriggerCron, Spec: s, Schedule: sched}, nil
}

// ParseSchedule parses export.schedule, a cron spec like those ParseTrigger
// accepts. "" (or only spaces) means no schedule: it returns nil, nil.
func ParseSchedule(s string) (cron.Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	sched, err := parseCron(s)
	if err != nil {
		if _, derr := time.ParseDuration(s); derr == nil {
			return nil, fmt.Errorf("%q is not a cron spec (for a fixed interval write \"@every %s\")", s, s)
		}
		return nil, fmt.Errorf("%q is not a cron spec (e.g. \"@hourly\", \"0 2 * * *\"): %v", s, err)
	}
	return sched, nil
}

// parseCron wraps cron.ParseStandard, refusing inputs it would mishandle.
func parseCron(s string) (cron.Schedule, error) {
	// cron v3 slices the spec up to the first space after a TZ prefix and
	// panics when there is none.
	if (strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=")) && !strings.Contains(s, " ") {
		return nil, errors.New("a CRON_TZ= prefix must be followed by a space and a schedule")
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, err
	}
	// cron rounds "@every" durations to whole seconds (at least 1s); say so
	// instead of silently running at another rate.
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		_, text, _ := strings.Cut(s, "@every ")
		d, err := time.ParseDuration(strings.TrimSpace(text))
		if err != nil || d != every.Delay {
			return nil, errors.New("@every needs a whole number of seconds, at least 1s")
		}
	}
	// A spec like "0 0 30 2 *" (30 February) parses but never fires.
	if sched.Next(time.Now()).IsZero() {
		return nil, errors.New("the schedule never fires")
	}
	return sched, nil
}

// looksLikeCron reports whether s was probably meant as a cron spec, so that
// cron's own complaint is worth showing.
func looksLikeCron(s string) bool {
	return strings.ContainsAny(s, " \t@*") || strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
