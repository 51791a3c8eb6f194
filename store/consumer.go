package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A consumer is something outside the store that reads a table's change
// feed and acts on each change (the alert notifier delivers each
// transition): it keeps its own position, advanced only once a change was
// handled, and the changes it gave up on (dead letters). The change feed is
// the outbox: what it delivers was written in the same bbolt transaction as
// the table's version, so nothing is lost, and a change delivered but not
// yet acknowledged by the position is delivered again (at least once).

// Such a consumer is a sub-bucket of the consumers bucket (registered
// consumers, see retention.go, are plain values beside them); once it has a
// position, retention waits for it too.

var (
	subPosition = []byte("position")
	subDead     = []byte("dead")
)

// Position is where a consumer is in a table's change feed: the next change
// to handle is the Index-th (from 0, preimages included) of Version.
type Position struct {
	// Table is the table whose change feed the consumer reads.
	Table   string `json:"table"`
	Version int64  `json:"version"`
	Index   int64  `json:"index"`
}

// DeadLetter is a change a consumer gave up on, kept until it is handled.
type DeadLetter struct {
	// ID identifies the change (the consumer's idempotency key).
	ID string `json:"id"`
	// Target is where it could not be delivered.
	Target string `json:"target"`
	// Attempts is how often it was tried.
	Attempts int `json:"attempts"`
	// LastError is the last attempt's failure.
	LastError string `json:"lastError"`
	// At is when it was given up on (ms since the Unix epoch).
	At int64 `json:"at"`
	// Data is what the consumer needs to try again (its own encoding).
	Data json.RawMessage `json:"data"`
}

// ConsumerPosition returns a consumer's position; ok is false if it never
// stored one.
func (db *DB) ConsumerPosition(consumer string) (p Position, ok bool, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		b := consumerBucket(tx, consumer)
		if b == nil {
			return nil
		}
		v := b.Get(subPosition)
		if v == nil {
			return nil
		}
		ok = true
		return jsonUnmarshal(v, &p)
	})
	if err != nil {
		return p, false, fmt.Errorf("position of consumer %q: %w", consumer, err)
	}
	return p, ok, nil
}

// SetConsumerPosition stores a consumer's position.
func (db *DB) SetConsumerPosition(consumer string, p Position) error {
	return db.updateConsumer(consumer, func(b *bolt.Bucket) error { return putJSON(b, subPosition, p) })
}

// PutDeadLetter keeps d (replacing one with the same ID and Target).
func (db *DB) PutDeadLetter(consumer string, d DeadLetter) error {
	return db.updateConsumer(consumer, func(b *bolt.Bucket) error {
		dead, err := b.CreateBucketIfNotExists(subDead)
		if err != nil {
			return err
		}
		return putJSON(dead, deadKey(d.ID, d.Target), d)
	})
}

// DeleteDeadLetter removes the dead letter of id for target, if any.
func (db *DB) DeleteDeadLetter(consumer, id, target string) error {
	return db.updateConsumer(consumer, func(b *bolt.Bucket) error {
		if dead := b.Bucket(subDead); dead != nil {
			return dead.Delete(deadKey(id, target))
		}
		return nil
	})
}

// DeadLetters returns a consumer's dead letters in ID order.
func (db *DB) DeadLetters(consumer string) ([]DeadLetter, error) {
	var out []DeadLetter
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := consumerBucket(tx, consumer)
		if b == nil || b.Bucket(subDead) == nil {
			return nil
		}
		return b.Bucket(subDead).ForEach(func(_, v []byte) error {
			var d DeadLetter
			if err := jsonUnmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters of consumer %q: %w", consumer, err)
	}
	return out, nil
}

func deadKey(id, target string) []byte { return []byte(id + "\x00" + target) }

func consumerBucket(tx *bolt.Tx, consumer string) *bolt.Bucket {
	cs := tx.Bucket(bucketConsumers)
	if cs == nil {
		return nil
	}
	return cs.Bucket([]byte(consumer))
}

func (db *DB) updateConsumer(consumer string, fn func(*bolt.Bucket) error) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		cs, err := tx.CreateBucketIfNotExists(bucketConsumers)
		if err != nil {
			return err
		}
		b, err := cs.CreateBucketIfNotExists([]byte(consumer))
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("consumer %q: %w", consumer, err)
	}
	return nil
}
