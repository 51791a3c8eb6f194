package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// table is an open table: its definition and every schema it has had.
// Stored records carry the index of the schema they were written with, so
// a table whose columns change keeps its history readable: old records are
// decoded with their own schema and projected, by column name, onto the
// current one (a new column reads as its zero value or null).
type table struct {
	name    string
	doc     string
	derived bool
	schemas []Schema
	// proj[i] maps schema i's columns to the current schema's (-1: absent).
	proj [][]int
}

func (t *table) schema() *Schema  { return &t.schemas[len(t.schemas)-1] }
func (t *table) schemaID() uint64 { return uint64(len(t.schemas) - 1) }

// storedColumn is a column as the meta bucket keeps it.
type storedColumn struct {
	Name     string   `json:"name"`
	Type     Type     `json:"type"`
	Nullable bool     `json:"nullable,omitempty"`
	Zone     string   `json:"zone,omitempty"`
	Enum     []string `json:"enum,omitempty"`
	Doc      string   `json:"doc,omitempty"`
}

type storedSchema struct {
	Columns    []storedColumn `json:"columns"`
	KeyColumns int            `json:"keyColumns"`
}

type storedDef struct {
	Doc     string `json:"doc,omitempty"`
	Derived bool   `json:"derived,omitempty"`
}

func toStored(s Schema) storedSchema {
	out := storedSchema{KeyColumns: s.KeyColumns}
	for _, c := range s.Columns {
		sc := storedColumn{Name: c.Name, Type: c.Type, Nullable: c.Nullable, Enum: c.Enum, Doc: c.Doc}
		if c.Zone != nil && c.Zone != time.UTC {
			sc.Zone = c.Zone.String()
		}
		out.Columns = append(out.Columns, sc)
	}
	return out
}

func fromStored(s storedSchema) (Schema, error) {
	out := Schema{KeyColumns: s.KeyColumns}
	for _, c := range s.Columns {
		col := Column{Name: c.Name, Type: c.Type, Nullable: c.Nullable, Enum: c.Enum, Doc: c.Doc, Zone: time.UTC}
		if c.Zone != "" {
			loc, err := time.LoadLocation(c.Zone)
			if err != nil {
				return out, fmt.Errorf("column %s: zone %q: %w", c.Name, c.Zone, err)
			}
			col.Zone = loc
		}
		out.Columns = append(out.Columns, col)
	}
	return out, nil
}

func validSchema(s Schema) error {
	if len(s.Columns) == 0 || s.KeyColumns < 1 || s.KeyColumns > len(s.Columns) {
		return fmt.Errorf("schema needs columns and 1..%d key columns", len(s.Columns))
	}
	seen := map[string]bool{}
	for i, c := range s.Columns {
		if c.Name == "" || seen[c.Name] {
			return fmt.Errorf("column %d: empty or duplicate name %q", i, c.Name)
		}
		seen[c.Name] = true
		if c.Type < String || c.Type > Enum {
			return fmt.Errorf("column %s: unknown type %d", c.Name, c.Type)
		}
		if i < s.KeyColumns && c.Nullable {
			return fmt.Errorf("key column %s cannot be nullable", c.Name)
		}
	}
	return nil
}

func sameSchema(a, b storedSchema) bool {
	return a.KeyColumns == b.KeyColumns && slices.EqualFunc(a.Columns, b.Columns, func(x, y storedColumn) bool {
		return x.Name == y.Name && x.Type == y.Type && x.Nullable == y.Nullable && x.Zone == y.Zone &&
			slices.Equal(x.Enum, y.Enum) && x.Doc == y.Doc
	})
}

// ensureTable creates def's table with version 0, or records def's schema
// as the table's new one when it changed. Key columns cannot change.
func (db *DB) ensureTable(tx *bolt.Tx, def TableDef, created int64) error {
	if err := validSchema(def.Schema); err != nil {
		return err
	}
	want := toStored(def.Schema)
	tables := tx.Bucket(bucketTables)
	tb := tables.Bucket([]byte(def.Name))
	if tb != nil {
		meta := tb.Bucket(subMeta)
		var schemas []storedSchema
		if err := jsonUnmarshal(meta.Get(keySchemas), &schemas); err != nil {
			return err
		}
		last := schemas[len(schemas)-1]
		if sameSchema(last, want) {
			return nil
		}
		// Key columns keep their names and types (their zone or doc may
		// change: those only change how a key is shown).
		if last.KeyColumns != want.KeyColumns || !slices.EqualFunc(last.Columns[:last.KeyColumns], want.Columns[:want.KeyColumns], func(x, y storedColumn) bool {
			return x.Name == y.Name && x.Type == y.Type
		}) {
			return fmt.Errorf("%w: key columns changed from %v to %v", ErrFormat, last.Columns[:last.KeyColumns], want.Columns[:want.KeyColumns])
		}
		schemas = append(schemas, want)
		db.log.Info("table schema changed", "table", def.Name, "schema", len(schemas)-1)
		return putJSON(meta, keySchemas, schemas)
	}
	tb, err := tables.CreateBucket([]byte(def.Name))
	if err != nil {
		return err
	}
	for _, sub := range [][]byte{subMeta, subLog, subTimes, subCDF, subRows, subNotes} {
		if _, err := tb.CreateBucket(sub); err != nil {
			return err
		}
	}
	meta := tb.Bucket(subMeta)
	if err := putJSON(meta, keySchemas, []storedSchema{want}); err != nil {
		return err
	}
	if err := putJSON(meta, keyDef, storedDef{Doc: def.Doc, Derived: def.Derived}); err != nil {
		return err
	}
	props := maps.Clone(def.Properties)
	if props == nil {
		props = map[string]string{}
	}
	if err := putJSON(meta, keyProps, props); err != nil {
		return err
	}
	params := map[string]string{
		"primaryKey":                 joinNames(def.Schema.KeyNames()),
		"delta.enableChangeDataFeed": "true",
	}
	for k, v := range props {
		params["properties."+k] = v
	}
	return putCommit(tb, CommitInfo{
		Version:             0,
		Timestamp:           created,
		Operation:           "CREATE TABLE",
		OperationParameters: params,
		OperationMetrics:    map[string]int64{},
	})
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ","
		}
		out += n
	}
	return out
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// loadTables reads every table's schemas from the file. Declared tables
// come first, in declaration order, then any other the file holds.
func (db *DB) loadTables(defs []TableDef) error {
	db.tables = map[string]*table{}
	return db.bolt.View(func(tx *bolt.Tx) error {
		tables := tx.Bucket(bucketTables)
		if tables == nil {
			return fmt.Errorf("%w: no tables bucket", ErrCorrupt)
		}
		var names []string
		for _, d := range defs {
			names = append(names, d.Name)
		}
		err := tables.ForEachBucket(func(k []byte) error {
			if !slices.Contains(names, string(k)) {
				names = append(names, string(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range names {
			tb := tables.Bucket([]byte(name))
			if tb == nil {
				return fmt.Errorf("%w %q", ErrUnknownTable, name)
			}
			t, err := readTable(name, tb)
			if err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
			db.tables[name] = t
			db.order = append(db.order, name)
		}
		return nil
	})
}

func readTable(name string, tb *bolt.Bucket) (*table, error) {
	meta := tb.Bucket(subMeta)
	if meta == nil {
		return nil, fmt.Errorf("%w: no meta bucket", ErrCorrupt)
	}
	var stored []storedSchema
	if err := jsonUnmarshal(meta.Get(keySchemas), &stored); err != nil {
		return nil, err
	}
	var def storedDef
	if err := jsonUnmarshal(meta.Get(keyDef), &def); err != nil {
		return nil, err
	}
	t := &table{name: name, doc: def.Doc, derived: def.Derived}
	for _, s := range stored {
		sch, err := fromStored(s)
		if err != nil {
			return nil, err
		}
		t.schemas = append(t.schemas, sch)
	}
	if len(t.schemas) == 0 {
		return nil, fmt.Errorf("%w: no schema", ErrCorrupt)
	}
	cur := t.schema()
	for _, s := range t.schemas {
		p := make([]int, len(s.Columns))
		for i, c := range s.Columns {
			p[i] = -1
			if j := cur.Index(c.Name); j >= 0 && cur.Columns[j].Type == c.Type {
				p[i] = j
			}
		}
		t.proj = append(t.proj, p)
	}
	return t, nil
}

// TableInfo describes a table of the open store.
type TableInfo struct {
	Name    string
	Doc     string
	Derived bool
	Schema  Schema
}

// Tables lists the store's tables: declared ones in declaration order,
// then the others.
func (db *DB) Tables() []TableInfo {
	out := make([]TableInfo, 0, len(db.order))
	for _, n := range db.order {
		t := db.tables[n]
		out = append(out, TableInfo{Name: n, Doc: t.doc, Derived: t.derived, Schema: *t.schema()})
	}
	return out
}

// Table returns one table's description.
func (db *DB) Table(name string) (TableInfo, error) {
	t, err := db.table(name)
	if err != nil {
		return TableInfo{}, err
	}
	return TableInfo{Name: name, Doc: t.doc, Derived: t.derived, Schema: *t.schema()}, nil
}

func (db *DB) table(name string) (*table, error) {
	t := db.tables[name]
	if t == nil {
		return nil, fmt.Errorf("%w %q (tables: %s)", ErrUnknownTable, name, joinNames(db.order))
	}
	return t, nil
}

// Properties returns a table's current properties.
func (db *DB) Properties(name string) (map[string]string, error) {
	var props map[string]string
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		return jsonUnmarshal(tb.Bucket(subMeta).Get(keyProps), &props)
	})
	return props, err
}

// view runs fn on one table's bucket in a read transaction.
func (db *DB) view(name string, fn func(tb *bolt.Bucket, t *table) error) error {
	t, err := db.table(name)
	if err != nil {
		return err
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, name)
		if err != nil {
			return err
		}
		return fn(tb, t)
	})
}

// decodeRecord decodes a stored body written with schema id into a row of
// the current schema; key fills the key columns.
func (t *table) decode(key []byte, id uint64, d *decoder) (Row, error) {
	return t.decodeInto(key, id, d, nil)
}

// decodeInto is decode into dst's storage when it is large enough.
func (t *table) decodeInto(key []byte, id uint64, d *decoder, dst Row) (Row, error) {
	if id >= uint64(len(t.schemas)) {
		return nil, fmt.Errorf("%w: schema %d of %d", ErrCorrupt, id, len(t.schemas))
	}
	cur := t.schema()
	if id == t.schemaID() {
		r := dst[:0:cap(dst)]
		if cap(r) < len(cur.Columns) {
			r = make(Row, len(cur.Columns))
		}
		r = r[:len(cur.Columns)]
		if keys := uint64(1)<<cur.KeyColumns - 1; d.omit&keys == keys {
			clear(r[:cur.KeyColumns])
		} else if err := cur.decodeKey(key, r); err != nil {
			return nil, err
		}
		cur.decodeBody(d, r)
		return r, d.err
	}
	// omit names the current schema's columns: an old schema decodes whole.
	omit := d.omit
	d.omit = 0
	defer func() { d.omit = omit }()
	old := &t.schemas[id]
	tmp := make(Row, len(old.Columns))
	if err := old.decodeKey(key, tmp); err != nil {
		return nil, err
	}
	old.decodeBody(d, tmp)
	r := make(Row, len(cur.Columns))
	for i := range r {
		if cur.Columns[i].Nullable {
			r[i] = Value{Null: true}
		}
	}
	for i, j := range t.proj[id] {
		if j >= 0 {
			r[j] = tmp[i]
		}
	}
	return r, d.err
}
