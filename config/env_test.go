package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/config"
)

// TestUnknownEnvVarsAreRefused: a mistyped UPICDC_* variable is refused like
// a mistyped file key, with a suggestion, instead of being ignored.
func TestUnknownEnvVarsAreRefused(t *testing.T) {
	_, err := config.Load(config.LoadOptions{Environ: []string{
		"HOME=/root", "UPICDC_STREAM_TRGGER=1s", "UPICDC_DATA_DIR=/tmp/x", "UPICDC_NOTHING_LIKE_IT=1",
	}})
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Fatalf("error = %v, want ErrUnknownKey", err)
	}
	want := strings.Join([]string{
		`config: environment variable UPICDC_NOTHING_LIKE_IT: unknown key`,
		`config: environment variable UPICDC_STREAM_TRGGER: unknown key (did you mean UPICDC_STREAM_TRIGGER?)`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestKnownEnvVarsAreAccepted: every configuration variable, UPICDC_CONFIG,
// the variables of the test suite and empty values pass; Environ is also
// what the values are read from.
func TestKnownEnvVarsAreAccepted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("stream:\n  name: from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := []string{"UPICDC_CONFIG=" + file, "UPICDC_STREAM_TRIGGER=1s", "UPICDC_TYPO=", "PATH=/bin"}
	for _, name := range config.NonConfigEnvVars() {
		environ = append(environ, name+"=1")
	}
	c, err := config.Load(config.LoadOptions{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	if c.Stream.Trigger != "1s" || c.Stream.Name != "from_file" {
		t.Errorf("trigger %q, name %q", c.Stream.Trigger, c.Stream.Name)
	}
}

// TestNonConfigEnvVarsAreAllListed: every UPICDC_* name that the
// repository's code reads is a configuration variable or in
// NonConfigEnvVars, so setting one of the test suite's variables in a shell
// never makes upicdc refuse to start. (The tests of unknown variables, which
// use mistyped names on purpose, are not scanned.)
func TestNonConfigEnvVarsAreAllListed(t *testing.T) {
	known := []string{config.EnvConfigFile}
	for _, s := range config.Default().Settings() {
		known = append(known, config.EnvVar(s.Key))
	}
	known = append(known, config.NonConfigEnvVars()...)
	skip := []string{filepath.Join("config", "env_test.go"), filepath.Join("cmd", "upicdc", "cli_test.go")}
	re := regexp.MustCompile(`UPICDC_[A-Z0-9_]*[A-Z0-9]`)
	found := 0
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel("..", path)
		if slices.Contains(skip, rel) {
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".py", ".sh":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, name := range re.FindAllString(string(data), -1) {
			found++
			if !slices.Contains(known, name) {
				t.Errorf("%s uses %s, which is neither a configuration variable nor in NonConfigEnvVars", rel, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Errorf("found only %d UPICDC_ names: is the walk reading the repository?", found)
	}
}
