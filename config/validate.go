package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownKey is the error inside a FieldError for a key that upicdc does
// not know, usually a typo.
var ErrUnknownKey = errors.New("unknown key")

// FieldError is a problem with one configuration key. Validate and Load
// return them (joined with errors.Join); callers can use errors.As.
type FieldError struct {
	Key string // the key, e.g. "stream.trigger"
	Err error  // what is wrong: the quoted bad value and what was expected
}

// Error returns "key: problem", e.g.
// `stream.trigger: "5x" is not a duration, "availableNow" or a cron spec`.
func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *FieldError) Unwrap() error { return e.Err }

// badValue returns an error that starts with the quoted value.
func badValue(value any, format string, args ...any) error {
	return fmt.Errorf("%q "+format, append([]any{fmt.Sprint(value)}, args...)...)
}

var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Validate checks every key. It returns nil or the problems joined with
// errors.Join, one *FieldError per bad key, in the order of Settings.
func (c Config) Validate() error {
	var errs []error
	for _, fe := range c.fieldErrors() {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// fieldErrors returns one error per bad key, in key order.
func (c Config) fieldErrors() []*FieldError {
	var out []*FieldError
	check := func(key string, err error) {
		if err != nil {
			out = append(out, &FieldError{Key: key, Err: err})
		}
	}

	if c.DataDir == "" {
		check("data_dir", badValue("", "must not be empty"))
	}
	check("log.level", oneOf(strings.ToLower(c.Log.Level), c.Log.Level, "debug", "info", "warn", "error"))
	check("log.format", oneOf(strings.ToLower(c.Log.Format), c.Log.Format, "text", "json"))
	if _, err := loadLocation(c.Input.Timezone); err != nil {
		check("input.timezone", err)
	}
	check("inbox.poll_interval", positive(c.Inbox.PollInterval))
	check("inbox.settle", positive(c.Inbox.Settle))
	if !streamNameRE.MatchString(c.Stream.Name) {
		check("stream.name", badValue(c.Stream.Name, "must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.' and '-'"))
	}
	if _, err := ParseTrigger(c.Stream.Trigger); err != nil {
		check("stream.trigger", err)
	}
	if c.Stream.MaxVersionsPerTrigger < 1 {
		check("stream.max_versions_per_trigger", badValue(c.Stream.MaxVersionsPerTrigger, "must be at least 1"))
	}
	if c.Stream.MaxRowsPerTrigger < 1 {
		check("stream.max_rows_per_trigger", badValue(c.Stream.MaxRowsPerTrigger, "must be at least 1"))
	}
	check("windows.sizes", checkWindowSizes(c.Windows.Sizes))
	if _, err := loadLocation(c.Windows.Timezone); err != nil {
		check("windows.timezone", err)
	}
	if c.Export.Dir != "" && filepath.Clean(c.ExportDir()) == filepath.Clean(c.InboxDir()) {
		// The inbox watcher would take the exported Parquet files as input.
		check("export.dir", badValue(c.Export.Dir, "is the inbox directory; the export needs a directory of its own"))
	}
	if _, err := ParseSchedule(c.Export.Schedule); err != nil {
		check("export.schedule", err)
	}
	if c.Retention.History < 0 {
		check("retention.history", badValue(c.Retention.History, "must not be negative (0 turns the rule off)"))
	}
	if c.Retention.Versions < 0 {
		check("retention.versions", badValue(c.Retention.Versions, "must not be negative (0 turns the rule off)"))
	}
	if _, err := ParseSchedule(c.Retention.Schedule); err != nil {
		check("retention.schedule", err)
	}
	c.alertErrors(check)
	if _, err := ParseSchedule(c.Reconcile.Schedule); err != nil {
		check("reconcile.schedule", err)
	}
	check("http.listen", checkListen(c.HTTP.Listen))
	for _, fe := range c.SQL.fieldErrors() {
		out = append(out, fe)
	}
	check("shutdown_timeout", positive(c.ShutdownTimeout))
	return out
}

// oneOf checks that got is one of want; shown is the value as written.
func oneOf(got, shown string, want ...string) error {
	for _, w := range want {
		if got == w {
			return nil
		}
	}
	return badValue(shown, "is not one of %s", strings.Join(want, ", "))
}

// checkWindowSizes checks windows.sizes: each size allowed. An empty list
// keeps no windows (merchant_window_aggregates stays empty).
func checkWindowSizes(sizes []string) error {
	allowed := WindowSizes()
	for _, s := range sizes {
		if err := oneOf(s, s, allowed...); err != nil {
			return err
		}
	}
	return nil
}

func positive(d time.Duration) error {
	if d <= 0 {
		return badValue(d, "must be greater than 0")
	}
	return nil
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return nil, badValue(name, `must be an IANA time zone name, e.g. "UTC" or "Asia/Kolkata"`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, badValue(name, `is not a known IANA time zone name (e.g. "UTC", "Asia/Kolkata"; the zone database comes from the system or time/tzdata)`)
	}
	return loc, nil
}

// checkListen checks a host:port listen address. The host may be empty (all
// interfaces); the port must be a number, 0 meaning any free port.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return badValue(addr, `is not host:port (e.g. "127.0.0.1:8080", ":8080"): %v`, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		if _, err := strconv.ParseUint(port, 10, 64); err == nil {
			return badValue(addr, "has port %s, outside 0-65535", port)
		}
		return badValue(addr, "has port %q, which is not a number from 0 to 65535", port)
	}
	return nil
}
