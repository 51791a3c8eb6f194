package config

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Config is upicdc's whole configuration. The mapstructure tags are the keys
// used in files, in UPICDC_* environment variables and in `upicdc config show`.
type Config struct {
	// DataDir holds the bbolt file and, by default, the inbox and the export.
	DataDir string `mapstructure:"data_dir"`
	// Log configures the process's slog logger.
	Log LogConfig `mapstructure:"log"`
	// Input says how input files are read.
	Input InputConfig `mapstructure:"input"`
	// Inbox is the directory the daemon watches for new files.
	Inbox InboxConfig `mapstructure:"inbox"`
	// Stream configures the stream processor that maintains the aggregates.
	Stream StreamConfig `mapstructure:"stream"`
	// Windows configures merchant_window_aggregates.
	Windows WindowsConfig `mapstructure:"windows"`
	// Export configures the Delta Lake export.
	Export ExportConfig `mapstructure:"export"`
	// Retention configures how long the change feed is kept (vacuum).
	Retention RetentionConfig `mapstructure:"retention"`
	// Alerts configures the alert rules and their delivery.
	Alerts AlertsConfig `mapstructure:"alerts"`
	// Reconcile configures serve's scheduled reconciles.
	Reconcile ReconcileConfig `mapstructure:"reconcile"`
	// HTTP configures the daemon's HTTP API.
	HTTP HTTPConfig `mapstructure:"http"`
	// SQL configures the daemon's SQL server (MySQL protocol).
	SQL SQLConfig `mapstructure:"sql"`
	// ShutdownTimeout bounds how long the daemon waits for work in progress
	// (the current micro-batch, HTTP requests) after SIGTERM.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error (any case).
	Level string `mapstructure:"level"`
	// Format is text or json.
	Format string `mapstructure:"format"`
}

// InputConfig says how input files are read.
type InputConfig struct {
	// Timezone is the IANA name of the zone used for timestamps that carry no
	// zone, such as "2024-12-21 10:00:00".
	Timezone string `mapstructure:"timezone"`
}

// InboxConfig configures the inbox watcher.
type InboxConfig struct {
	// Dir is the inbox directory; "" means <data_dir>/inbox (see Config.InboxDir).
	Dir string `mapstructure:"dir"`
	// PollInterval is how often the inbox is rescanned, as a safety net for
	// file-system events that were missed.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// Settle is how long a file that was not renamed into the inbox (written
	// in place, or copied in) must keep the same size and modification time
	// before it is taken as complete.
	Settle time.Duration `mapstructure:"settle"`
}

// StreamConfig configures the stream processor.
type StreamConfig struct {
	// Name is the stream's checkpoint name and its Delta txn appId.
	Name string `mapstructure:"name"`
	// Trigger says when micro-batches run; see ParseTrigger.
	Trigger string `mapstructure:"trigger"`
	// MaxVersionsPerTrigger caps how many raw table versions one micro-batch reads.
	MaxVersionsPerTrigger int `mapstructure:"max_versions_per_trigger"`
	// MaxRowsPerTrigger caps the raw change rows one micro-batch reads (it
	// ends with the raw version that reaches it; a single larger version
	// is still one micro-batch): it bounds the processor's memory whatever
	// the backlog.
	MaxRowsPerTrigger int `mapstructure:"max_rows_per_trigger"`
}

// WindowsConfig configures the windowed merchant aggregates
// (merchant_window_aggregates).
type WindowsConfig struct {
	// Sizes are the window sizes kept: 1h, 1d and/or 1w.
	Sizes []string `mapstructure:"sizes"`
	// Timezone is the IANA name of the zone whose hours, days and weeks
	// the windows follow (a day window starts at local midnight).
	Timezone string `mapstructure:"timezone"`
}

// WindowSizes are the sizes windows.sizes accepts.
func WindowSizes() []string { return []string{"1h", "1d", "1w"} }

// ExportConfig configures the Delta Lake export.
type ExportConfig struct {
	// Dir is where the Delta tables are written; "" means <data_dir>/export
	// (see Config.ExportDir).
	Dir string `mapstructure:"dir"`
	// Schedule is a cron spec for periodic exports; "" turns them off.
	Schedule string `mapstructure:"schedule"`
}

// RetentionConfig configures retention: what `upicdc vacuum`, and serve on
// Schedule, remove. A version's change feed goes only when every rule set
// allows it and no consumer still needs it; with no rule set, nothing goes.
type RetentionConfig struct {
	// History keeps the change feed of versions committed within this long
	// (0: no limit by age).
	History time.Duration `mapstructure:"history"`
	// Versions keeps the change feed of each table's newest this many
	// versions (0: no limit by count).
	Versions int `mapstructure:"versions"`
	// Schedule is a cron spec for serve's vacuums; "" turns them off.
	Schedule string `mapstructure:"schedule"`
	// Compact makes serve compact the store after a scheduled vacuum when
	// its free pages are at least a tenth of the file (default true):
	// writers wait for the copy, readers only for the swap.
	Compact bool `mapstructure:"compact"`
}

// ReconcileConfig configures serve's scheduled reconcile: the derived
// tables recomputed from the raw change feed and compared with the stored
// ones, on a snapshot, while ingestion goes on.
type ReconcileConfig struct {
	// Schedule is a cron spec for serve's reconciles; "" turns them off.
	Schedule string `mapstructure:"schedule"`
}

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	// Listen is the host:port the API listens on; port 0 picks a free port.
	Listen string `mapstructure:"listen"`
}

// Setting is one configuration key and its value as text, as listed by
// `upicdc config show`.
type Setting struct {
	Key   string
	Value string
}

// Default returns the configuration used for every key that is not set.
func Default() Config {
	return Config{
		DataDir: "./upicdc-data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Input:   InputConfig{Timezone: "UTC"},
		Inbox:   InboxConfig{Dir: "", PollInterval: 10 * time.Second, Settle: time.Second},
		Stream: StreamConfig{
			Name:                  "merchant_aggregates",
			Trigger:               "5s",
			MaxVersionsPerTrigger: 100,
			MaxRowsPerTrigger:     1_000_000,
		},
		Windows:         WindowsConfig{Sizes: []string{"1d", "1w"}, Timezone: "Asia/Kolkata"},
		Export:          ExportConfig{Dir: "", Schedule: ""},
		Retention:       RetentionConfig{Compact: true},
		Alerts:          AlertsConfig{MaxAttempts: 10, RetryBackoff: time.Second},
		Reconcile:       ReconcileConfig{Schedule: "@daily"},
		HTTP:            HTTPConfig{Listen: "127.0.0.1:8080"},
		SQL:             SQLConfig{Listen: "127.0.0.1:3307", Users: []string{}, QueryTimeout: 30 * time.Second, MaxRows: 10_000_000},
		ShutdownTimeout: 30 * time.Second,
	}
}

// InboxDir returns the inbox directory: inbox.dir, or <data_dir>/inbox when
// inbox.dir is empty.
func (c Config) InboxDir() string {
	if c.Inbox.Dir != "" {
		return c.Inbox.Dir
	}
	return filepath.Join(c.DataDir, "inbox")
}

// ExportDir returns the export directory: export.dir, or <data_dir>/export
// when export.dir is empty.
func (c Config) ExportDir() string {
	if c.Export.Dir != "" {
		return c.Export.Dir
	}
	return filepath.Join(c.DataDir, "export")
}

// Location loads input.timezone.
func (c Config) Location() (*time.Location, error) {
	loc, err := loadLocation(c.Input.Timezone)
	if err != nil {
		return nil, &FieldError{Key: "input.timezone", Err: err}
	}
	return loc, nil
}

// WindowsLocation loads windows.timezone.
func (c Config) WindowsLocation() (*time.Location, error) {
	loc, err := loadLocation(c.Windows.Timezone)
	if err != nil {
		return nil, &FieldError{Key: "windows.timezone", Err: err}
	}
	return loc, nil
}

// StreamTrigger parses stream.trigger.
func (c Config) StreamTrigger() (Trigger, error) {
	t, err := ParseTrigger(c.Stream.Trigger)
	if err != nil {
		return Trigger{}, &FieldError{Key: "stream.trigger", Err: err}
	}
	return t, nil
}

// ExportSchedule parses export.schedule; a nil schedule means periodic
// exports are off.
func (c Config) ExportSchedule() (cron.Schedule, error) {
	s, err := ParseSchedule(c.Export.Schedule)
	if err != nil {
		return nil, &FieldError{Key: "export.schedule", Err: err}
	}
	return s, nil
}

// RetentionSchedule parses retention.schedule; nil means serve never
// vacuums on its own.
func (c Config) RetentionSchedule() (cron.Schedule, error) {
	s, err := ParseSchedule(c.Retention.Schedule)
	if err != nil {
		return nil, &FieldError{Key: "retention.schedule", Err: err}
	}
	return s, nil
}

// ReconcileSchedule parses reconcile.schedule; nil means serve never
// reconciles on its own.
func (c Config) ReconcileSchedule() (cron.Schedule, error) {
	s, err := ParseSchedule(c.Reconcile.Schedule)
	if err != nil {
		return nil, &FieldError{Key: "reconcile.schedule", Err: err}
	}
	return s, nil
}

// SlogLevel returns log.level as a slog.Level; a level that Validate would
// refuse is reported as slog.LevelInfo.
func (l LogConfig) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Settings returns every key with its value, in the order of the Config
// struct. Durations are written as Go durations ("10s"), so every value can be
// fed back through a file, the environment or a flag. inbox.dir and
// export.dir are listed as set (empty by default); InboxDir and ExportDir
// resolve them.
func (c Config) Settings() []Setting {
	ls := leaves()
	out := make([]Setting, 0, len(ls))
	for _, l := range ls {
		out = append(out, Setting{Key: l.key, Value: l.format(c)})
	}
	return out
}

// leafKind is the type of a configuration key's value.
type leafKind int

const (
	kindString leafKind = iota
	kindInt
	kindDuration
	kindBool
	kindStrings // a list of strings; one comma-separated string in the environment
	kindList    // a list of sections; JSON text in the environment
)

// leaf is one configuration key, found by walking Config's mapstructure tags,
// so the list of keys (for defaults, the environment, unknown-key checks and
// Settings) cannot drift from the struct.
type leaf struct {
	key   string // "stream.trigger"
	index []int  // field index path for reflect.Value.FieldByIndex
	kind  leafKind
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	stringsType  = reflect.TypeFor[[]string]()
)

// leaves lists Config's keys in struct order. It is computed on each call
// (it is cheap) rather than kept in a package variable.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			key := prefix + f.Tag.Get("mapstructure")
			idx := append(append([]int(nil), index...), i)
			switch {
			case f.Type == durationType:
				out = append(out, leaf{key: key, index: idx, kind: kindDuration})
			case f.Type == stringsType:
				out = append(out, leaf{key: key, index: idx, kind: kindStrings})
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				out = append(out, leaf{key: key, index: idx, kind: kindList})
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, key+".", idx)
			case f.Type.Kind() == reflect.String:
				out = append(out, leaf{key: key, index: idx, kind: kindString})
			case f.Type.Kind() == reflect.Int:
				out = append(out, leaf{key: key, index: idx, kind: kindInt})
			case f.Type.Kind() == reflect.Bool:
				out = append(out, leaf{key: key, index: idx, kind: kindBool})
			default:
				// Config is fixed at compile time and TestKeys walks it, so
				// this is a programming error, never a user's.
				panic(fmt.Sprintf("config: field %s has unsupported type %s", key, f.Type))
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// sections returns the keys that hold other keys ("log", "stream", ...).
func sections() map[string]bool {
	out := map[string]bool{}
	for _, l := range leaves() {
		if i := strings.LastIndexByte(l.key, '.'); i >= 0 {
			out[l.key[:i]] = true
		}
	}
	return out
}

// value returns the key's value in c as a string, int, time.Duration or
// []string.
func (l leaf) value(c Config) any {
	return reflect.ValueOf(c).FieldByIndex(l.index).Interface()
}

// format returns the key's value in c as text that Load accepts back.
func (l leaf) format(c Config) string {
	switch v := l.value(c).(type) {
	case time.Duration:
		return v.String()
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case []string:
		return strings.Join(v, ",")
	case []AlertRule, []WebhookConfig:
		return formatList(v)
	default:
		return fmt.Sprint(v)
	}
}
