//go:build !unix

package daemon

import "os"

// openNoFollow opens path for reading. This system has no O_NOFOLLOW: a link
// put in place of the file since the scan is caught by readFile's check that
// the opened file is the one the scan listed (os.SameFile).
func openNoFollow(path string) (*os.File, error) { return os.Open(path) }
