package delta

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Protocol is Delta's protocol action.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format is metaData.format.
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is Delta's metaData action.
type Metadata struct {
	ID               string            `json:"id"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
}

// ChangeDataFeed reports whether delta.enableChangeDataFeed is true.
func (m *Metadata) ChangeDataFeed() bool {
	return m != nil && strings.EqualFold(m.Configuration["delta.enableChangeDataFeed"], "true")
}

// AddFile is Delta's add action.
type AddFile struct {
	Path             string             `json:"path"`
	PartitionValues  map[string]*string `json:"partitionValues"`
	Size             int64              `json:"size"`
	ModificationTime int64              `json:"modificationTime"`
	DataChange       bool               `json:"dataChange"`
	Stats            string             `json:"stats,omitempty"`
	Tags             map[string]string  `json:"tags,omitempty"`
	DeletionVector   json.RawMessage    `json:"deletionVector,omitempty"`
}

// RemoveFile is Delta's remove action (a tombstone once replayed).
type RemoveFile struct {
	Path                 string             `json:"path"`
	DeletionTimestamp    *int64             `json:"deletionTimestamp,omitempty"`
	DataChange           bool               `json:"dataChange"`
	ExtendedFileMetadata *bool              `json:"extendedFileMetadata,omitempty"`
	PartitionValues      map[string]*string `json:"partitionValues"`
	Size                 *int64             `json:"size,omitempty"`
	DeletionVector       json.RawMessage    `json:"deletionVector,omitempty"`
}

// CDCFile is Delta's cdc action: a file of change rows under _change_data/.
type CDCFile struct {
	Path            string             `json:"path"`
	PartitionValues map[string]*string `json:"partitionValues"`
	Size            int64              `json:"size"`
	DataChange      bool               `json:"dataChange"`
}

// Txn is Delta's txn action (a streaming writer's idempotency marker).
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}

// CommitInfo is the part of Delta's commitInfo action this package uses.
// Writers put arbitrary fields there; Raw keeps the whole object.
type CommitInfo struct {
	Timestamp           *int64          `json:"timestamp,omitempty"`
	InCommitTimestamp   *int64          `json:"inCommitTimestamp,omitempty"`
	Operation           string          `json:"operation,omitempty"`
	EngineInfo          string          `json:"engineInfo,omitempty"`    // Spark: "Apache-Spark/4.0.0 Delta-Lake/4.0.1"
	ClientVersion       string          `json:"clientVersion,omitempty"` // delta-rs: "delta-rs.0.25.0"
	OperationParameters map[string]any  `json:"operationParameters,omitempty"`
	OperationMetrics    map[string]any  `json:"operationMetrics,omitempty"`
	Raw                 json.RawMessage `json:"-"`
}

// Sidecar is a V2 checkpoint's sidecar action: a Parquet file under
// _delta_log/_sidecars/ holding some of the checkpoint's add and remove actions.
type Sidecar struct {
	Path        string `json:"path"`
	SizeInBytes int64  `json:"sizeInBytes"`
}

// action is one line of a commit file or one row of a checkpoint.
type action struct {
	Sidecar    *Sidecar    `json:"sidecar,omitempty"`
	Txn        *Txn        `json:"txn,omitempty"`
	Add        *AddFile    `json:"add,omitempty"`
	Remove     *RemoveFile `json:"remove,omitempty"`
	MetaData   *Metadata   `json:"metaData,omitempty"`
	Protocol   *Protocol   `json:"protocol,omitempty"`
	CDC        *CDCFile    `json:"cdc,omitempty"`
	CommitInfo *CommitInfo `json:"commitInfo,omitempty"`
}

// Commit is one parsed _delta_log/NNN.json.
type Commit struct {
	Version    int64
	Timestamp  int64 // _commit_timestamp, ms since the Unix epoch (see package doc)
	CommitInfo *CommitInfo
	Protocol   *Protocol
	Metadata   *Metadata
	Adds       []AddFile
	Removes    []RemoveFile
	CDCs       []CDCFile
	Txns       []Txn
}

// parseCommit parses newline-delimited JSON actions.
func parseCommit(version int64, data []byte) (*Commit, error) {
	c := &Commit{Version: version}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var a action
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if a.CommitInfo != nil {
			var raw struct {
				CommitInfo json.RawMessage `json:"commitInfo"`
			}
			if err := json.Unmarshal([]byte(line), &raw); err == nil {
				a.CommitInfo.Raw = raw.CommitInfo
			}
		}
		c.add(&a)
	}
	return c, nil
}

func (c *Commit) add(a *action) {
	switch {
	case a.CommitInfo != nil:
		c.CommitInfo = a.CommitInfo
	case a.Protocol != nil:
		c.Protocol = a.Protocol
	case a.MetaData != nil:
		c.Metadata = a.MetaData
	case a.Add != nil:
		c.Adds = append(c.Adds, *a.Add)
	case a.Remove != nil:
		c.Removes = append(c.Removes, *a.Remove)
	case a.CDC != nil:
		c.CDCs = append(c.CDCs, *a.CDC)
	case a.Txn != nil:
		c.Txns = append(c.Txns, *a.Txn)
	}
}

// Field is one top-level column of a table's schema.
type Field struct {
	Name     string
	Type     string // Delta primitive type name, e.g. "long", "decimal(18,2)"; "" for nested types
	Nested   json.RawMessage
	Nullable bool
}

// Schema is a table's top-level columns in schema order.
type Schema []Field

// Index returns the position of the named column, or -1.
func (s Schema) Index(name string) int {
	for i, f := range s {
		if f.Name == name {
			return i
		}
	}
	for i, f := range s {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// Names returns the column names.
func (s Schema) Names() []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}

// ParseSchema parses metaData.schemaString.
func ParseSchema(schemaString string) (Schema, error) {
	var st struct {
		Type   string `json:"type"`
		Fields []struct {
			Name     string          `json:"name"`
			Type     json.RawMessage `json:"type"`
			Nullable bool            `json:"nullable"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemaString), &st); err != nil {
		return nil, fmt.Errorf("schemaString: %w", err)
	}
	if st.Type != "struct" {
		return nil, fmt.Errorf("schemaString: type %q, want struct", st.Type)
	}
	s := make(Schema, 0, len(st.Fields))
	for _, f := range st.Fields {
		fd := Field{Name: f.Name, Nullable: f.Nullable}
		var name string
		if err := json.Unmarshal(f.Type, &name); err == nil {
			fd.Type = name
		} else {
			fd.Nested = f.Type
		}
		s = append(s, fd)
	}
	return s, nil
}

// decimalType parses "decimal(p,s)".
func decimalType(t string) (precision, scale int, ok bool) {
	if !strings.HasPrefix(t, "decimal(") || !strings.HasSuffix(t, ")") {
		return 0, 0, false
	}
	p, s, found := strings.Cut(t[len("decimal("):len(t)-1], ",")
	if !found {
		return 0, 0, false
	}
	pi, err1 := strconv.Atoi(strings.TrimSpace(p))
	si, err2 := strconv.Atoi(strings.TrimSpace(s))
	return pi, si, err1 == nil && err2 == nil
}
