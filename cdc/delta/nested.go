package delta

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// Struct is a struct value: its fields in the schema's order.
type Struct []NamedValue

// NamedValue is one field of a [Struct].
type NamedValue struct {
	Name  string
	Value any
}

// Array is an array value.
type Array []any

// Map is a map value: its entries in file order.
type Map []MapEntry

// MapEntry is one entry of a [Map].
type MapEntry struct {
	Key, Value any
}

// dataType is a parsed Delta data type.
type dataType struct {
	name   string // primitive type name; "struct", "array" or "map" for nested types
	fields []structField
	elem   *dataType // array element
	key    *dataType // map key
	value  *dataType // map value
}

type structField struct {
	name string
	typ  *dataType
}

// parseDataType parses a Delta schema type: a JSON string (primitive) or a
// struct/array/map object.
func parseDataType(raw json.RawMessage) (*dataType, error) {
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		return &dataType{name: name}, nil
	}
	var obj struct {
		Type   string `json:"type"`
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
		ElementType json.RawMessage `json:"elementType"`
		KeyType     json.RawMessage `json:"keyType"`
		ValueType   json.RawMessage `json:"valueType"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("data type %s: %w", raw, err)
	}
	t := &dataType{name: obj.Type}
	var err error
	switch obj.Type {
	case "struct":
		for _, f := range obj.Fields {
			ft, err := parseDataType(f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			t.fields = append(t.fields, structField{name: f.Name, typ: ft})
		}
	case "array":
		if t.elem, err = parseDataType(obj.ElementType); err != nil {
			return nil, err
		}
	case "map":
		if t.key, err = parseDataType(obj.KeyType); err != nil {
			return nil, err
		}
		if t.value, err = parseDataType(obj.ValueType); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: data type %q", ErrUnsupported, obj.Type)
	}
	return t, nil
}

// assembler rebuilds one nested column's values from its Parquet leaves
// (record assembly from repetition and definition levels). Every leaf of the
// Parquet subtree takes part, also those the Delta type does not name, so
// that a null or empty level can always be seen.
type assembler struct {
	kind     byte // 'p' primitive, 's' struct, 'l' list, 'm' map
	optional bool
	def      int // definition level of this node when present
	rep      int // repetition level of the repeated node (lists, maps)
	leaf     int // primitive: position in the column's leaf list
	conv     converter
	first    int          // position of the subtree's first leaf
	last     int          // position after the subtree's last leaf
	children []*assembler // struct: the file's fields; list: [element]; map: [key, value]
	slots    []int        // struct: each child's Delta field position, -1 if the Delta type does not have it
	names    []string     // struct: the Delta type's field names (nil: value not wanted)
}

// nestedColumn is one top-level nested column of a data file.
type nestedColumn struct {
	schemaIndex int
	columns     []int // the Parquet column indexes of its leaves, in order
	root        *assembler
}

// newNestedColumn builds the assembler of a top-level column.
func newNestedColumn(root parquet.Node, name string, typ *dataType, fileSchema *parquet.Schema) (*nestedColumn, error) {
	nc := &nestedColumn{}
	a, err := nc.build(root, []string{name}, typ, 0, 0, fileSchema)
	if err != nil {
		return nil, err
	}
	nc.root = a
	return nc, nil
}

func (nc *nestedColumn) build(n parquet.Node, path []string, typ *dataType, def, rep int, fs *parquet.Schema) (*assembler, error) {
	a := &assembler{optional: n.Optional(), first: len(nc.columns)}
	if n.Optional() || n.Repeated() {
		def++
	}
	a.def = def
	if n.Repeated() {
		// A bare repeated field outside a LIST group is a list (legacy 2-level form).
		rep++
		elem, err := nc.buildRequired(n, path, elemType(typ), def, rep, fs)
		if err != nil {
			return nil, err
		}
		a.kind, a.optional, a.def, a.rep, a.children = 'l', false, def-1, rep, []*assembler{elem}
		a.last = len(nc.columns)
		return a, nil
	}
	if n.Leaf() {
		a.kind, a.leaf = 'p', len(nc.columns)
		leaf, ok := fs.Lookup(path...)
		if !ok {
			return nil, fmt.Errorf("column %s not in the file schema", strings.Join(path, "."))
		}
		nc.columns = append(nc.columns, leaf.ColumnIndex)
		if typ != nil {
			if typ.name == "struct" || typ.name == "array" || typ.name == "map" {
				return nil, fmt.Errorf("column %s: %s stored as a Parquet primitive", strings.Join(path, "."), typ.name)
			}
			c, err := converterFor(typ.name, n)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", strings.Join(path, "."), err)
			}
			a.conv = c
		}
		a.last = len(nc.columns)
		return a, nil
	}
	fields := n.Fields()
	switch {
	case isAnnotated(n, deprecated.List) && len(fields) == 1 && fields[0].Repeated():
		r := fields[0]
		rp := append(path, r.Name())
		var elem *assembler
		var err error
		if !r.Leaf() && len(r.Fields()) == 1 && r.Name() != "array" && r.Name() != path[len(path)-1]+"_tuple" {
			// Standard 3-level list: repeated group list { element }.
			e := r.Fields()[0]
			elem, err = nc.build(e, append(rp, e.Name()), elemType(typ), def+1, rep+1, fs)
		} else {
			// Legacy 2-level list: the repeated field is the element.
			elem, err = nc.buildRequired(r, rp, elemType(typ), def+1, rep+1, fs)
		}
		if err != nil {
			return nil, err
		}
		a.kind, a.rep, a.children = 'l', rep+1, []*assembler{elem}
	case (isAnnotated(n, deprecated.Map) || isAnnotated(n, deprecated.MapKeyValue)) && len(fields) == 1 && fields[0].Repeated() && !fields[0].Leaf() && len(fields[0].Fields()) == 2:
		kv := fields[0]
		kp := append(path, kv.Name())
		var kt, vt *dataType
		if typ != nil && typ.name == "map" {
			kt, vt = typ.key, typ.value
		}
		k, err := nc.build(kv.Fields()[0], append(kp, kv.Fields()[0].Name()), kt, def+1, rep+1, fs)
		if err != nil {
			return nil, err
		}
		v, err := nc.build(kv.Fields()[1], append(kp, kv.Fields()[1].Name()), vt, def+1, rep+1, fs)
		if err != nil {
			return nil, err
		}
		a.kind, a.rep, a.children = 'm', rep+1, []*assembler{k, v}
	default:
		a.kind = 's'
		if typ != nil && typ.name != "struct" {
			return nil, fmt.Errorf("column %s: %s stored as a Parquet group", strings.Join(path, "."), typ.name)
		}
		byName := map[string]int{}
		if typ != nil {
			a.names = make([]string, len(typ.fields))
			for i, f := range typ.fields {
				a.names[i] = f.name
				byName[strings.ToLower(f.name)] = i
			}
		}
		for _, f := range fields {
			i, named := byName[strings.ToLower(f.Name())]
			var ft *dataType
			if named {
				ft = typ.fields[i].typ
			} else {
				i = -1 // read to keep the leaves in step, then dropped
			}
			c, err := nc.build(f, append(path, f.Name()), ft, def, rep, fs)
			if err != nil {
				return nil, err
			}
			a.children = append(a.children, c)
			a.slots = append(a.slots, i)
		}
	}
	a.last = len(nc.columns)
	return a, nil
}

// buildRequired builds n as if it were required (a repeated field standing
// for its own element).
func (nc *nestedColumn) buildRequired(n parquet.Node, path []string, typ *dataType, def, rep int, fs *parquet.Schema) (*assembler, error) {
	return nc.build(parquet.Required(n), path, typ, def, rep, fs)
}

// isAnnotated reports whether group n is a LIST or MAP (logical or converted type).
func isAnnotated(n parquet.Node, want deprecated.ConvertedType) bool {
	if lt := n.Type().LogicalType(); lt != nil {
		switch lt.Value.(type) {
		case *format.ListType:
			return want == deprecated.List
		case *format.MapType:
			return want == deprecated.Map || want == deprecated.MapKeyValue
		}
	}
	ct := n.Type().ConvertedType()
	return ct != nil && *ct == want
}

func elemType(t *dataType) *dataType {
	if t == nil || t.name != "array" {
		return nil
	}
	return t.elem
}

// cursor walks the values of each leaf of one row.
type cursor struct {
	vals [][]parquet.Value
	pos  []int
}

func (c *cursor) peek(leaf int) (parquet.Value, bool) {
	if c.pos[leaf] >= len(c.vals[leaf]) {
		return parquet.Value{}, false
	}
	return c.vals[leaf][c.pos[leaf]], true
}

// skip consumes one value of every leaf in [first, last).
func (c *cursor) skip(first, last int) {
	for i := first; i < last; i++ {
		c.pos[i]++
	}
}

// read assembles one value of a from the cursor.
func (a *assembler) read(c *cursor) (any, error) {
	v, ok := c.peek(a.first)
	if !ok {
		return nil, fmt.Errorf("nested column: values end early")
	}
	if v.DefinitionLevel() < a.def {
		c.skip(a.first, a.last)
		return nil, nil
	}
	switch a.kind {
	case 'p':
		c.pos[a.leaf]++
		if a.conv == nil || v.IsNull() {
			return nil, nil
		}
		return a.conv(v)
	case 's':
		var out Struct
		if a.names != nil {
			out = make(Struct, len(a.names))
			for i, n := range a.names {
				out[i].Name = n
			}
		}
		for i, ch := range a.children {
			x, err := ch.read(c)
			if err != nil {
				return nil, err
			}
			if j := a.slots[i]; j >= 0 {
				out[j].Value = x
			}
		}
		if out == nil {
			return nil, nil
		}
		return out, nil
	case 'l', 'm':
		if v.DefinitionLevel() < a.def+1 { // present but empty
			c.skip(a.first, a.last)
			if a.kind == 'm' {
				return Map{}, nil
			}
			return Array{}, nil
		}
		var arr Array
		var m Map
		for {
			if a.kind == 'l' {
				x, err := a.children[0].read(c)
				if err != nil {
					return nil, err
				}
				arr = append(arr, x)
			} else {
				k, err := a.children[0].read(c)
				if err != nil {
					return nil, err
				}
				x, err := a.children[1].read(c)
				if err != nil {
					return nil, err
				}
				m = append(m, MapEntry{Key: k, Value: x})
			}
			next, ok := c.peek(a.first)
			if !ok || next.RepetitionLevel() < a.rep {
				break
			}
		}
		if a.kind == 'm' {
			return m, nil
		}
		return arr, nil
	}
	return nil, fmt.Errorf("nested column: unknown node kind %c", a.kind)
}
