package main

import (
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// readmeBlocks returns the ```sh blocks written directly under the README
// sections named (up to the next heading of any level: "### Tests" under
// "Quick start" is not run, it is this test suite).
func readmeBlocks(t *testing.T, readme string, sections ...string) []string {
	t.Helper()
	var blocks []string
	for _, name := range sections {
		start := strings.Index(readme, "\n## "+name+"\n")
		if start < 0 {
			t.Fatalf("README has no section %q", name)
		}
		body := readme[start+len("\n## "+name+"\n"):]
		if end := regexp.MustCompile(`(?m)^#`).FindStringIndex(body); end != nil {
			body = body[:end[0]]
		}
		found := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(body, -1)
		if len(found) == 0 {
			t.Fatalf("README section %q has no sh block", name)
		}
		for _, m := range found {
			blocks = append(blocks, m[1])
		}
	}
	return blocks
}

// copyRepo copies the repository (without .git and build or data output)
// into dir, so the README's commands can build and write there.
func copyRepo(t *testing.T, root, dir string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch rel {
		case ".git", "upicdc", "upicdc-data", "bench-out":
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadmeSession runs the README's Quick start and "A session" as a user
// pastes them, one shell, in a copy of the repository: every command must
// succeed, with the upicdc that Quick start builds and puts on the PATH.
func TestReadmeSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary again (-short)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme), "Quick start", "A session")
	repo := filepath.Join(t.TempDir(), "upicdc")
	copyRepo(t, "../..", repo)

	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = repo
	tmp := t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UPICDC_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "TMPDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// No upicdc on the PATH but the one Quick start builds: the session
	// must work with what Quick start sets up.
	var path []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "upicdc")); err != nil {
			path = append(path, dir)
		}
	}
	cmd.Env = append(cmd.Env, "PATH="+strings.Join(path, string(os.PathListSeparator)), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README blocks failed: %v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	for _, want := range []string{
		"| M003        | 1500        | 0             | 1500      |", // demo's last table
		"0 difference(s)", // reconcile
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "upi", store.FileName)); err != nil {
		t.Errorf("the session's store is not under $TMPDIR: %v", err)
	}
}
