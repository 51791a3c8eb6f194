package httpapi

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// DefaultPage is the page size of a sorted or searched merchants list.
const DefaultPage = 50

type merchantsPageJSON struct {
	Table   string `json:"table"`
	Version int64  `json:"version"`
	// Total is how many merchants match ?q= (all of them without it).
	Total     int64           `json:"total"`
	Offset    int64           `json:"offset"`
	Sort      string          `json:"sort"`
	Order     string          `json:"order"`
	Merchants []render.Object `json:"merchants"`
}

// isPageRequest says whether a merchants request asks for a sorted,
// searched or offset page rather than the key-order list.
func isPageRequest(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("sort") || q.Has("order") || q.Has("q") || q.Has("offset")
}

// merchantsPage is /api/v1/merchants with ?sort= (any column; default
// merchant_id), ?order=asc|desc, ?q= (merchants whose id contains it,
// ignoring case), ?offset= and ?limit= (default DefaultPage): it reads the
// whole table (now, at ?version= or ?as_of=), filters, sorts (ties by
// merchant_id) and returns one page with the number of matches. 10,000
// merchants take a few milliseconds.
func (s *server) merchantsPage(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "sort", "order", "q", "offset", "limit", "version", "as_of", "after"); err != nil {
		s.fail(w, r, err)
		return
	}
	if r.URL.Query().Has("after") {
		s.fail(w, r, &paramError{"after", "not with sort, order, q or offset (use offset)"})
		return
	}
	sch, err := s.schema(agg.TotalsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sortBy, _, err := oneParam(r, "sort")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if sortBy == "" {
		sortBy = "merchant_id"
	}
	col := sch.Index(sortBy)
	if col < 0 {
		s.fail(w, r, &paramError{"sort", fmt.Sprintf("%q is not a column (%s)", sortBy, strings.Join(render.Names(sch), ", "))})
		return
	}
	order, _, err := oneParam(r, "order")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch order {
	case "":
		order = "asc"
	case "asc", "desc":
	default:
		s.fail(w, r, &paramError{"order", fmt.Sprintf("%q is not asc or desc", order)})
		return
	}
	search, _, err := oneParam(r, "q")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	search = strings.ToLower(search)
	offset, err := intParam(r, "offset", 0, 0, 1<<62)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", DefaultPage, 1, MaxLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, err := s.readVersion(r, agg.TotalsTable)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rows []store.Row
	version, err = s.db.Scan(r.Context(), agg.TotalsTable, version, store.KeyRange{}, func(row store.Row) error {
		if search == "" || strings.Contains(strings.ToLower(row[0].Str), search) {
			rows = append(rows, slices.Clone(row))
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	byString := sch.Columns[col].Type == store.String || sch.Columns[col].Type == store.Enum
	slices.SortFunc(rows, func(a, b store.Row) int {
		var c int
		switch {
		case a[col].Null || b[col].Null:
			c = cmp.Compare(boolInt(!a[col].Null), boolInt(!b[col].Null)) // nulls first
		case byString:
			c = strings.Compare(a[col].Str, b[col].Str)
		default:
			c = cmp.Compare(a[col].Int, b[col].Int)
		}
		if order == "desc" {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a[0].Str, b[0].Str))
	})
	out := merchantsPageJSON{Table: agg.TotalsTable, Version: version, Total: int64(len(rows)), Offset: offset,
		Sort: sortBy, Order: order, Merchants: []render.Object{}}
	names := render.Names(sch)
	for i := offset; i < int64(len(rows)) && i < offset+limit; i++ {
		out.Merchants = append(out.Merchants, render.Object{Columns: names, Cells: render.Row(sch, rows[i])})
	}
	writeJSON(w, http.StatusOK, out)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
