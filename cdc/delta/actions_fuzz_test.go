package delta

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseCommit feeds arbitrary commit files to the log parser: it may
// refuse them, never panic. go test ./cdc/delta -fuzz=FuzzParseCommit
func FuzzParseCommit(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "fixtures", "delta", "*", "_delta_log", "*.json"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"add":{"path":"a%20b","partitionValues":{"p":null},"size":1,"modificationTime":0,"dataChange":true}}`))
	f.Add([]byte(`{"metaData":{"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",\"type\":{\"type\":\"array\"}}]}"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCommit(1, data)
		if err != nil {
			return
		}
		if c.Metadata != nil {
			if s, err := ParseSchema(c.Metadata.SchemaString); err == nil {
				for _, fd := range s {
					decimalType(fd.Type)
				}
			}
		}
		for _, a := range c.Adds {
			(&Table{dir: "t"}).filePath(a.Path)
			for k, v := range a.PartitionValues {
				parsePartitionValue(k, v)
			}
		}
	})
}
