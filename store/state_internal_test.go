package store

import (
	"context"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestProcessDropsTheOldStateBucket: a stream of a store an earlier release
// wrote has a state bucket (every transaction's contribution); the first
// micro-batch that commits drops it, and one that rolls back leaves it.
func TestProcessDropsTheOldStateBucket(t *testing.T) {
	db := recOpen(t)
	recWorkload(t, db, 1, func(int) bool { return false })
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		sb, err := tx.Bucket(bucketStreams).CreateBucketIfNotExists([]byte("s"))
		if err != nil {
			return err
		}
		st, err := sb.CreateBucket(subState)
		if err != nil {
			return err
		}
		return st.Put([]byte("T1"), []byte("a contribution"))
	}); err != nil {
		t.Fatal(err)
	}
	hasState := func() (has bool) {
		_ = db.bolt.View(func(tx *bolt.Tx) error {
			has = tx.Bucket(bucketStreams).Bucket([]byte("s")).Bucket(subState) != nil
			return nil
		})
		return has
	}
	ctx := context.Background()
	if _, committed, err := db.Process(ctx, "s", "items", func(*ProcessTx) error { return nil }); err != nil || committed {
		t.Fatalf("a micro-batch without Commit: committed %v, err %v", committed, err)
	}
	if !hasState() {
		t.Fatal("a rolled-back micro-batch dropped the state bucket")
	}
	if _, committed, err := db.Process(ctx, "s", "items", func(p *ProcessTx) error {
		p.Commit(1, nil, nil)
		return nil
	}); err != nil || !committed {
		t.Fatalf("micro-batch: committed %v, err %v", committed, err)
	}
	if hasState() {
		t.Error("the state bucket is still there after a committed micro-batch")
	}
}
