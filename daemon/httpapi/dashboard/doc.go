// Package dashboard is the live merchant dashboard that `upicdc serve`
// serves at GET /: one HTML page, its script and style, and the vendored
// chart library (uPlot, MIT; refresh it with refresh-vendor.sh), embedded
// in the binary with go:embed. There is no build step and nothing is loaded
// from elsewhere, so the page works offline.
//
// The page only reads the JSON API (package httpapi) and follows
// /api/v1/events (Server-Sent Events) to refresh within a moment of each
// commit. Money arrives as exact JSON numbers; the script reads them as
// decimal text and groups the digits the Indian way (₹1,23,456.50) without
// ever going through a float.
package dashboard
