package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseBuild builds and installs with the Makefile, as the README
// says a release is built: the binary is static (no ELF interpreter, so it
// runs on any Linux without a matching libc) and says its version.
func TestReleaseBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary again (-short)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("make is not installed (.ci/run installs it)")
		}
		t.Skip("make is not installed")
	}
	prefix := t.TempDir()
	bin := filepath.Join(t.TempDir(), "upicdc")
	cmd := exec.Command("make", "-C", "../..", "install", "BIN="+bin, "PREFIX="+prefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	installed := filepath.Join(prefix, "bin", "upicdc")
	if runtime.GOOS == "linux" {
		f, err := elf.Open(installed)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has an ELF interpreter: it is dynamically linked", installed)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("imported libraries %v (%v)", libs, err)
		}
	}

	out, err := exec.Command(installed, "version", "--format=json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v []map[string]string
	decode(t, string(out), &v)
	if len(v) != 1 || v[0]["go"] != runtime.Version() || v[0]["cgo_enabled"] != "0" || v[0]["version"] == "" || v[0]["version"] == "(devel)" {
		t.Errorf("version: %s", out)
	}
	if want, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		if got := v[0]["version"]; got != strings.TrimSpace(string(want)) {
			t.Errorf("version %q, want git describe's %q", got, want)
		}
	}
	text, err := exec.Command(installed, "version").Output()
	if err != nil || !strings.HasPrefix(string(text), "upicdc "+v[0]["version"]+" ") {
		t.Errorf("version: %q (%v)", text, err)
	}
}

// TestVersionFormats: version honours --format like every other command.
func TestVersionFormats(t *testing.T) {
	var v []map[string]string
	decode(t, runOK(t, "version", "--format=json"), &v)
	if len(v) != 1 || v[0]["go"] != runtime.Version() || v[0]["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --format=json: %v", v)
	}
	if out := runOK(t, "version", "--format=csv"); !strings.HasPrefix(out, "version,revision,go,platform,cgo_enabled\n") {
		t.Errorf("version --format=csv:\n%s", out)
	}
	if _, errOut, code := run(t, nil, "version", "--format=xml"); code != 2 {
		t.Errorf("--format=xml: exit %d, %q", code, errOut)
	}
}
