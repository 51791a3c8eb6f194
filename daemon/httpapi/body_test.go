package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRequestBodyLimit: the API is read-only and takes at most 1 KiB of
// request body; more is a 413 with a JSON error, whether the length is
// declared or the body is chunked.
func TestRequestBodyLimit(t *testing.T) {
	srv := seeded(t)
	big := strings.Repeat("x", 2<<20)
	for _, tc := range []struct {
		name    string
		body    io.Reader
		chunked bool
		want    int
	}{
		{"no body", nil, false, http.StatusOK},
		{"1 KiB", strings.NewReader(strings.Repeat("x", 1<<10)), false, http.StatusOK},
		{"2 MB", strings.NewReader(big), false, http.StatusRequestEntityTooLarge},
		{"2 MB chunked", io.MultiReader(strings.NewReader(big)), true, http.StatusRequestEntityTooLarge},
		{"1 KiB + 1 chunked", io.MultiReader(bytes.NewReader(make([]byte, 1<<10+1))), true, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/merchants", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked {
				req.ContentLength = -1
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusOK {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, "1024 bytes") || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("body %q (%v), Content-Type %q", body, err, resp.Header.Get("Content-Type"))
				}
			}
		})
	}
}
