package cdc

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestApplyOrder checks the radix-sorted order against a plain sort of
// (transaction_id, transaction_time, file position) on id shapes that
// exercise the prefix: random, time-ordered with a long shared prefix,
// ids that tie on their first 8 bytes past it, ids shorter than the shared
// prefix plus 8, repeated ids, and ids that are prefixes of others.
func TestApplyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := map[string]func() string{
		"random":   func() string { return fmt.Sprintf("TXN%016x", r.Uint64()) },
		"ordered":  func() string { return fmt.Sprintf("%012d", 400_000_000_000+r.IntN(5000)) },
		"long tie": func() string { return "PAY" + strings.Repeat("x", 8) + fmt.Sprintf("%03d", r.IntN(50)) },
		"short":    func() string { return strings.Repeat("a", r.IntN(4)) + string(rune('a'+r.IntN(3))) },
		"prefixes": func() string { return "ID" + strings.Repeat("9", r.IntN(12)) },
		"mixed": func() string {
			if r.IntN(2) == 0 {
				return fmt.Sprintf("%d", r.IntN(1000))
			}
			return fmt.Sprintf("T%x", r.Uint32())
		},
	}
	for name, id := range shapes {
		for _, n := range []int{0, 1, 2, 3, 1000, 20_000} {
			rows := make([]Input, n)
			for i := range rows {
				rows[i] = Input{Pos: i + 2, Row: Row{TransactionID: id(), Time: int64(r.IntN(4))}}
			}
			want := make([]int32, n)
			for i := range want {
				want[i] = int32(i)
			}
			slices.SortStableFunc(want, func(a, b int32) int {
				ra, rb := rows[a].Row, rows[b].Row
				if c := strings.Compare(ra.TransactionID, rb.TransactionID); c != 0 {
					return c
				}
				return cmp.Compare(ra.Time, rb.Time)
			})
			if got := applyOrder(rows); !slices.Equal(got, want) {
				t.Errorf("%s, %d rows: order differs from a plain sort", name, n)
			}
		}
	}
}
