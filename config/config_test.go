package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/upicdc/upicdc/config"
)

// env returns a LookupEnv backed by a map, so tests never see the real
// environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// load loads a file with an empty environment and no flags.
func load(t *testing.T, file string) (config.Config, error) {
	t.Helper()
	return config.Load(config.LoadOptions{File: file, LookupEnv: env(nil)})
}

// writeFile writes a config file into a temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func settingsMap(c config.Config) map[string]string {
	m := map[string]string{}
	for _, s := range c.Settings() {
		m[s.Key] = s.Value
	}
	return m
}

func TestDefaultIsValid(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestLoadGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d good files, want at least 4", len(files))
	}
	full, err := load(t, "testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Extra checks for some files; every file must at least load.
	checks := map[string]func(t *testing.T, c config.Config){
		"empty.good.yaml":         equalsDefault,
		"comments_only.good.yaml": equalsDefault,
		"nulls.good.yaml":         equalsDefault,
		"full.good.yaml": func(t *testing.T, c config.Config) {
			// The full file sets every key to something other than its default.
			def := settingsMap(config.Default())
			for _, s := range c.Settings() {
				if s.Value == def[s.Key] {
					t.Errorf("%s = %q, the default; full.good.yaml should set every key", s.Key, s.Value)
				}
			}
		},
		"full.good.json": func(t *testing.T, c config.Config) { sameAs(t, c, full) },
		"full.good.toml": func(t *testing.T, c config.Config) { sameAs(t, c, full) },
		"cron_trigger.good.yaml": func(t *testing.T, c config.Config) {
			wantTrigger(t, c, config.TriggerCron, "*/5 * * * *")
		},
		"every_trigger.good.yaml": func(t *testing.T, c config.Config) {
			wantTrigger(t, c, config.TriggerCron, "@every 1m")
			if s, err := c.ExportSchedule(); err != nil || s == nil {
				t.Errorf("ExportSchedule() = %v, %v; want a schedule", s, err)
			}
		},
		"cron_tz_trigger.good.yaml": func(t *testing.T, c config.Config) {
			wantTrigger(t, c, config.TriggerCron, "CRON_TZ=Asia/Kolkata 30 9 * * 1-5")
		},
		"available_now.good.yaml": func(t *testing.T, c config.Config) {
			wantTrigger(t, c, config.TriggerAvailableNow, "availableNow")
		},
		"mixed_case.good.yaml": func(t *testing.T, c config.Config) {
			wantTrigger(t, c, config.TriggerAvailableNow, "availableNow")
			if got := c.Log.SlogLevel().String(); got != "WARN" {
				t.Errorf("SlogLevel() = %s, want WARN", got)
			}
		},
		"zero_trigger.good.yaml": func(t *testing.T, c config.Config) {
			wantTrigger(t, c, config.TriggerInterval, "0s")
			if c.Inbox.PollInterval != 500*time.Millisecond {
				t.Errorf("inbox.poll_interval = %v, want 500ms", c.Inbox.PollInterval)
			}
		},
		"number_name.good.yaml": func(t *testing.T, c config.Config) {
			if c.Stream.Name != "2024" {
				t.Errorf("stream.name = %q, want \"2024\"", c.Stream.Name)
			}
		},
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			c, err := load(t, file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate after Load: %v", err)
			}
			if check := checks[name]; check != nil {
				check(t, c)
			}
		})
	}
	for name := range checks {
		if _, err := os.Stat(filepath.Join("testdata", name)); err != nil {
			t.Errorf("check for missing file: %v", err)
		}
	}
}

func equalsDefault(t *testing.T, c config.Config) {
	t.Helper()
	sameAs(t, c, config.Default())
}

func sameAs(t *testing.T, got, want config.Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}
}

func wantTrigger(t *testing.T, c config.Config, kind config.TriggerKind, text string) {
	t.Helper()
	tr, err := c.StreamTrigger()
	if err != nil {
		t.Fatalf("StreamTrigger() error: %v", err)
	}
	if tr.Kind != kind || tr.String() != text {
		t.Errorf("trigger = %v %q, want %v %q", tr.Kind, tr.String(), kind, text)
	}
}

// TestLoadBadFiles loads each testdata/*.bad.yaml; every line of the sibling
// .err file must appear in the error, and the error must name the file.
func TestLoadBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d bad files, want at least 10", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := os.ReadFile(file + ".err")
			if err != nil {
				t.Fatalf("every bad file needs a .err file with the expected error: %v", err)
			}
			_, err = load(t, file)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			got := err.Error()
			for line := range strings.Lines(string(want)) {
				line = strings.TrimRight(line, "\n")
				if line != "" && !strings.Contains(got, line) {
					t.Errorf("error does not contain %q:\n%s", line, got)
				}
			}
			for line := range strings.Lines(got) {
				if !strings.HasPrefix(line, "config "+file+": ") {
					t.Errorf("error line does not start with %q: %q", "config "+file+": ", line)
				}
			}
		})
	}
}

func TestLoadErrorsAreFieldErrors(t *testing.T) {
	_, err := load(t, "testdata/several.bad.yaml")
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *FieldError", e)
		}
		keys = append(keys, fe.Key)
	}
	want := []string{"log.level", "stream.trigger", "stream.max_versions_per_trigger", "http.listen"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}

	_, err = load(t, "testdata/unknown_key.bad.yaml")
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Errorf("errors.Is(%v, ErrUnknownKey) = false", err)
	}
}

func TestLoadNoFile(t *testing.T) {
	c, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	equalsDefault(t, c)
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := load(t, path)
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
	if want := "config " + path + ": cannot read: no such file or directory"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestLoadFileFromEnv(t *testing.T) {
	path := writeFile(t, "c.yml", "stream:\n  trigger: availableNow\n")
	c, err := config.Load(config.LoadOptions{LookupEnv: env(map[string]string{"UPICDC_CONFIG": path})})
	if err != nil {
		t.Fatal(err)
	}
	wantTrigger(t, c, config.TriggerAvailableNow, "availableNow")

	// An explicit file wins over UPICDC_CONFIG.
	other := writeFile(t, "d.yaml", "stream:\n  trigger: 7s\n")
	c, err = config.Load(config.LoadOptions{File: other, LookupEnv: env(map[string]string{"UPICDC_CONFIG": path})})
	if err != nil {
		t.Fatal(err)
	}
	wantTrigger(t, c, config.TriggerInterval, "7s")

	// A missing file named by UPICDC_CONFIG is an error that says so.
	missing := filepath.Join(t.TempDir(), "gone.yaml")
	_, err = config.Load(config.LoadOptions{LookupEnv: env(map[string]string{"UPICDC_CONFIG": missing})})
	if err == nil || !strings.Contains(err.Error(), missing+" (from UPICDC_CONFIG)") {
		t.Errorf("error = %v, want it to name %s and UPICDC_CONFIG", err, missing)
	}
}

func TestLoadUnsupportedExtension(t *testing.T) {
	path := writeFile(t, "upicdc.conf", "data_dir = x\n")
	_, err := load(t, path)
	want := `config ` + path + `: unsupported file type ".conf" (use .yaml, .yml, .json or .toml)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestLoadSyntaxErrorsNameTheFile(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"bad.yaml", "stream: [\n", "invalid YAML"},
		{"bad.json", `{"stream": }`, "invalid JSON"},
		{"bad.toml", "[stream\n", "invalid TOML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.name, tc.content)
			_, err := load(t, path)
			if err == nil || !strings.HasPrefix(err.Error(), "config "+path+": "+tc.want) {
				t.Errorf("error = %v, want prefix %q", err, "config "+path+": "+tc.want)
			}
		})
	}
}

// TestPrecedence checks flags > environment > file > defaults, and that only
// flags set on the command line count.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "upicdc.yaml", `
data_dir: /from/file
stream:
  trigger: 1m
  max_versions_per_trigger: 7
http:
  listen: 127.0.0.1:1111
`)
	environ := map[string]string{
		"UPICDC_STREAM_TRIGGER":                  "availableNow",
		"UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER": "8",
		"UPICDC_HTTP_LISTEN":                     "127.0.0.1:2222",
		"UPICDC_INBOX_POLL_INTERVAL":             "3s",
		"UPICDC_LOG_LEVEL":                       "", // set but empty: ignored
	}
	flags := pflag.NewFlagSet("upicdc", pflag.ContinueOnError)
	flags.String("trigger", "@hourly", "")        // defined, not set: must not override
	flags.Int("max-versions", 1, "")              // set below
	flags.String("listen", "", "")                // set below
	flags.Duration("shutdown-timeout", 0, "")     // set below, typed flag
	flags.String("data-dir", "./upicdc-data", "") // not set
	if err := flags.Parse([]string{"--max-versions=9", "--listen", "127.0.0.1:3333", "--shutdown-timeout=45s"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.LoadOptions{
		File:  file,
		Flags: flags,
		FlagKeys: map[string]string{
			"trigger":          "stream.trigger",
			"max-versions":     "stream.max_versions_per_trigger",
			"listen":           "http.listen",
			"shutdown-timeout": "shutdown_timeout",
			"data-dir":         "data_dir",
			"not-defined-here": "export.dir", // flags of other subcommands are skipped
		},
		LookupEnv: env(environ),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.DataDir = "/from/file"               // file
	want.Stream.Trigger = "availableNow"      // env over file; the flag was not set
	want.Stream.MaxVersionsPerTrigger = 9     // flag over env over file
	want.HTTP.Listen = "127.0.0.1:3333"       // flag over env over file
	want.Inbox.PollInterval = 3 * time.Second // env over default
	want.ShutdownTimeout = 45 * time.Second   // flag over default
	sameAs(t, c, want)
}

func TestErrorsSayWhereTheValueCameFrom(t *testing.T) {
	flags := pflag.NewFlagSet("upicdc", pflag.ContinueOnError)
	flags.String("listen", "", "")
	if err := flags.Parse([]string{"--listen=nowhere"}); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "upicdc.yaml", "log:\n  level: loud\n")
	_, err := config.Load(config.LoadOptions{
		File:      file,
		Flags:     flags,
		FlagKeys:  map[string]string{"listen": "http.listen"},
		LookupEnv: env(map[string]string{"UPICDC_STREAM_TRIGGER": "5x"}),
	})
	want := strings.Join([]string{
		`config ` + file + `: log.level: "loud" is not one of debug, info, warn, error`,
		`config: stream.trigger: "5x" is not a duration, "availableNow" or a cron spec (from environment variable UPICDC_STREAM_TRIGGER)`,
		`config: http.listen: "nowhere" is not host:port (e.g. "127.0.0.1:8080", ":8080"): missing port in address (from flag --listen)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestFlagKeysUnknownKey(t *testing.T) {
	_, err := config.Load(config.LoadOptions{
		Flags:     pflag.NewFlagSet("x", pflag.ContinueOnError),
		FlagKeys:  map[string]string{"trigger": "stream.trigerr"},
		LookupEnv: env(nil),
	})
	if err == nil || !strings.Contains(err.Error(), `flag --trigger is mapped to "stream.trigerr"`) {
		t.Errorf("error = %v", err)
	}
}

// TestEnvSetsEveryKey feeds the Settings of a non-default configuration back
// through UPICDC_* variables and expects the same configuration.
func TestEnvSetsEveryKey(t *testing.T) {
	full, err := load(t, "testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{}
	for _, s := range full.Settings() {
		environ[config.EnvVar(s.Key)] = s.Value
	}
	if got := config.EnvVar("stream.max_versions_per_trigger"); got != "UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER" {
		t.Errorf("EnvVar = %s", got)
	}
	c, err := config.Load(config.LoadOptions{LookupEnv: env(environ)})
	if err != nil {
		t.Fatal(err)
	}
	sameAs(t, c, full)
}

func TestEnvTypeErrors(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER", "ten", `stream.max_versions_per_trigger: "ten" is not a whole number`},
		{"UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER", "99999999999999999999", `stream.max_versions_per_trigger: "99999999999999999999" is out of range`},
		{"UPICDC_INBOX_POLL_INTERVAL", "10", `inbox.poll_interval: "10" is not a duration (a duration needs a unit, e.g. "10s")`},
		{"UPICDC_SHUTDOWN_TIMEOUT", "soon", `shutdown_timeout: "soon" is not a duration`},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := config.Load(config.LoadOptions{LookupEnv: env(map[string]string{tc.name: tc.value})})
			want := "config: " + tc.want
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "(from environment variable "+tc.name+")") {
				t.Errorf("error = %v, want %s ... (from environment variable %s)", err, want, tc.want)
			}
		})
	}
}

func TestExampleConfig(t *testing.T) {
	c, err := load(t, "../examples/upicdc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example lists every key with its default value.
	equalsDefault(t, c)
}

func TestSettingsListsEveryKey(t *testing.T) {
	var got []string
	for _, s := range config.Default().Settings() {
		got = append(got, s.Key+"="+s.Value)
	}
	want := []string{
		"data_dir=./upicdc-data",
		"log.level=info",
		"log.format=text",
		"input.timezone=UTC",
		"inbox.dir=",
		"inbox.poll_interval=10s",
		"inbox.settle=1s",
		"stream.name=merchant_aggregates",
		"stream.trigger=5s",
		"stream.max_versions_per_trigger=100", "stream.max_rows_per_trigger=1000000",
		"windows.sizes=1d,1w",
		"windows.timezone=Asia/Kolkata",
		"export.dir=",
		"export.schedule=",
		"retention.history=0s",
		"retention.versions=0",
		"retention.schedule=",
		"retention.compact=true",
		"alerts.rules=[]",
		"alerts.alertmanager.url=",
		"alerts.webhooks=[]",
		"alerts.max_attempts=10",
		"alerts.retry_backoff=1s",
		"reconcile.schedule=@daily",
		"http.listen=127.0.0.1:8080",
		"sql.listen=127.0.0.1:3307",
		"sql.users=",
		"sql.query_timeout=30s",
		"sql.max_rows=10000000",
		"shutdown_timeout=30s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Settings:\n got %q\nwant %q", got, want)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"data dir", func(c *config.Config) { c.DataDir = "" }, `data_dir: "" must not be empty`},
		{"log level", func(c *config.Config) { c.Log.Level = "trace" }, `log.level: "trace" is not one of debug, info, warn, error`},
		{"log format", func(c *config.Config) { c.Log.Format = "xml" }, `log.format: "xml" is not one of text, json`},
		{"timezone", func(c *config.Config) { c.Input.Timezone = "Nowhere/Land" }, `input.timezone: "Nowhere/Land" is not a known IANA time zone name`},
		{"empty timezone", func(c *config.Config) { c.Input.Timezone = "" }, `input.timezone: "" must be an IANA time zone name`},
		{"poll interval", func(c *config.Config) { c.Inbox.PollInterval = -time.Second }, `inbox.poll_interval: "-1s" must be greater than 0`},
		{"settle", func(c *config.Config) { c.Inbox.Settle = 0 }, `inbox.settle: "0s" must be greater than 0`},
		{"stream name", func(c *config.Config) { c.Stream.Name = "" }, `stream.name: "" must be 1 to 64 characters`},
		{"trigger", func(c *config.Config) { c.Stream.Trigger = "5x" }, `stream.trigger: "5x" is not a duration, "availableNow" or a cron spec`},
		{"max versions", func(c *config.Config) { c.Stream.MaxVersionsPerTrigger = -1 }, `stream.max_versions_per_trigger: "-1" must be at least 1`},
		{"max rows", func(c *config.Config) { c.Stream.MaxRowsPerTrigger = 0 }, `stream.max_rows_per_trigger: "0" must be at least 1`},
		{"window size", func(c *config.Config) { c.Windows.Sizes = []string{"1d", "2d"} }, `windows.sizes: "2d" is not one of 1h, 1d, 1w`},
		{"windows timezone", func(c *config.Config) { c.Windows.Timezone = "Nowhere/Land" }, `windows.timezone: "Nowhere/Land" is not a known IANA time zone name`},
		{"export dir", func(c *config.Config) { c.Export.Dir = filepath.Join(c.DataDir, "inbox") }, `export.dir: "upicdc-data/inbox" is the inbox directory`},
		{"schedule", func(c *config.Config) { c.Export.Schedule = "61 * * * *" }, `export.schedule: "61 * * * *" is not a cron spec`},
		{"listen", func(c *config.Config) { c.HTTP.Listen = "8080" }, `http.listen: "8080" is not host:port`},
		{"shutdown", func(c *config.Config) { c.ShutdownTimeout = 0 }, `shutdown_timeout: "0s" must be greater than 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("one bad key gave several lines: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryBadKey(t *testing.T) {
	c := config.Default()
	c.Log.Level = "loud"
	c.HTTP.Listen = "nowhere"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "log.level: ") || !strings.HasPrefix(lines[1], "http.listen: ") {
		t.Errorf("Validate() = %q, want one line for log.level then one for http.listen", lines)
	}
}

func TestLocation(t *testing.T) {
	c := config.Default()
	c.Input.Timezone = "Asia/Kolkata"
	loc, err := c.Location()
	if err != nil {
		t.Fatal(err)
	}
	got := time.Date(2024, 12, 21, 10, 0, 0, 0, loc).UTC().Format(time.DateTime)
	if want := "2024-12-21 04:30:00"; got != want {
		t.Errorf("10:00 in Asia/Kolkata = %s UTC, want %s", got, want)
	}
	c.Input.Timezone = "Nowhere/Land"
	var fe *config.FieldError
	if _, err := c.Location(); !errors.As(err, &fe) || fe.Key != "input.timezone" {
		t.Errorf("Location() error = %v, want a FieldError for input.timezone", err)
	}
}

func TestWindowsLocation(t *testing.T) {
	c := config.Default()
	loc, err := c.WindowsLocation()
	if err != nil || loc.String() != "Asia/Kolkata" {
		t.Fatalf("WindowsLocation() = %v, %v; want Asia/Kolkata", loc, err)
	}
	c.Windows.Timezone = "Nowhere/Land"
	var fe *config.FieldError
	if _, err := c.WindowsLocation(); !errors.As(err, &fe) || fe.Key != "windows.timezone" {
		t.Errorf("WindowsLocation() error = %v, want a FieldError for windows.timezone", err)
	}
}

// TestWindowSizesFromEveryOrigin reads the list windows.sizes from a file
// list (an empty one too), from a comma-separated environment variable,
// and refuses a non-list.
func TestWindowSizesFromEveryOrigin(t *testing.T) {
	file := writeFile(t, "w.yaml", "windows:\n  sizes: [1h, 1w]\n")
	c, err := load(t, file)
	if err != nil || !reflect.DeepEqual(c.Windows.Sizes, []string{"1h", "1w"}) {
		t.Errorf("file: sizes %q, %v", c.Windows.Sizes, err)
	}
	c, err = config.Load(config.LoadOptions{LookupEnv: env(map[string]string{"UPICDC_WINDOWS_SIZES": "1h, 1d"})})
	if err != nil || !reflect.DeepEqual(c.Windows.Sizes, []string{"1h", "1d"}) {
		t.Errorf("env: sizes %q, %v", c.Windows.Sizes, err)
	}
	_, err = config.Load(config.LoadOptions{LookupEnv: env(map[string]string{"UPICDC_WINDOWS_SIZES": "1d,5m"})})
	if err == nil || !strings.Contains(err.Error(), `windows.sizes: "5m" is not one of 1h, 1d, 1w (from environment variable UPICDC_WINDOWS_SIZES)`) {
		t.Errorf("env 5m: %v", err)
	}
	// An empty list keeps no windows; it is not the default. (In the
	// environment an empty variable counts as unset.)
	c, err = load(t, writeFile(t, "w.yaml", "windows:\n  sizes: []\n"))
	if err != nil || c.Windows.Sizes == nil || len(c.Windows.Sizes) != 0 {
		t.Errorf("file, empty: sizes %#v, %v", c.Windows.Sizes, err)
	}
	_, err = load(t, writeFile(t, "w.yaml", "windows:\n  sizes: {a: 1}\n"))
	if err == nil || !strings.Contains(err.Error(), "windows.sizes") || !strings.Contains(err.Error(), "not a list") {
		t.Errorf("a section for a list: %v", err)
	}
}

func TestDirs(t *testing.T) {
	c := config.Default()
	c.DataDir = "/var/lib/upicdc"
	if got, want := c.InboxDir(), "/var/lib/upicdc/inbox"; got != want {
		t.Errorf("InboxDir() = %s, want %s", got, want)
	}
	if got, want := c.ExportDir(), "/var/lib/upicdc/export"; got != want {
		t.Errorf("ExportDir() = %s, want %s", got, want)
	}
	c.Inbox.Dir, c.Export.Dir = "/in", "/out"
	if c.InboxDir() != "/in" || c.ExportDir() != "/out" {
		t.Errorf("InboxDir(), ExportDir() = %s, %s; want /in, /out", c.InboxDir(), c.ExportDir())
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "Warn": "WARN", "ERROR": "ERROR", "bogus": "INFO"} {
		if got := (config.LogConfig{Level: level}).SlogLevel().String(); got != want {
			t.Errorf("SlogLevel(%q) = %s, want %s", level, got, want)
		}
	}
}

// retention.compact is a boolean: true or false from a file or the
// environment, anything else refused naming the key.
func TestRetentionCompactIsABoolean(t *testing.T) {
	c, err := config.Load(config.LoadOptions{LookupEnv: env(nil)})
	if err != nil || !c.Retention.Compact {
		t.Fatalf("default: %v %v", c.Retention.Compact, err)
	}
	c, err = config.Load(config.LoadOptions{LookupEnv: env(map[string]string{"UPICDC_RETENTION_COMPACT": "false"})})
	if err != nil || c.Retention.Compact {
		t.Fatalf("from the environment: %v %v", c.Retention.Compact, err)
	}
	dir := t.TempDir()
	for body, want := range map[string]string{"retention:\n  compact: false\n": "", "retention:\n  compact: 1\n": "retention.compact", "retention:\n  compact: \"no\"\n": "not true or false"} {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(config.LoadOptions{File: path, LookupEnv: env(nil)})
		switch {
		case want == "" && (err != nil || c.Retention.Compact):
			t.Errorf("%q: %v %v", body, c.Retention.Compact, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want an error naming %q", body, err, want)
		}
	}
}
