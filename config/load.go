package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvConfigFile is the environment variable that names the config file when
// LoadOptions.File is empty.
const EnvConfigFile = "UPICDC_CONFIG"

// EnvVar returns the environment variable that sets a key:
// "stream.max_versions_per_trigger" -> "UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER".
func EnvVar(key string) string {
	return "UPICDC_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// LoadOptions says where configuration comes from. Precedence, lowest first:
// defaults, file, environment, flags.
type LoadOptions struct {
	// File is the config file (.yaml, .yml, .json or .toml). If it is empty,
	// $UPICDC_CONFIG names the file; if that is unset too, there is none.
	// A named file that does not exist is an error.
	File string
	// Flags may be nil. Only flags that were set on the command line
	// (Changed) override; flags in FlagKeys that Flags does not define are
	// skipped, so one FlagKeys map can serve every subcommand.
	Flags *pflag.FlagSet
	// FlagKeys maps a flag name to the key it sets, e.g. "data-dir" -> "data_dir".
	FlagKeys map[string]string
	// LookupEnv reads the environment. Variables that are set but empty
	// count as unset.
	LookupEnv func(string) (string, bool)
	// Environ is the environment as KEY=VALUE entries (as os.Environ returns
	// it). Every non-empty UPICDC_* variable in it must be a configuration
	// variable (EnvVar of a key), EnvConfigFile or one of NonConfigEnvVars:
	// others are refused like unknown file keys. When LookupEnv is nil,
	// values are read from Environ. With both nil, the process environment
	// is used for both; with only LookupEnv set (a lookup cannot be listed),
	// unknown variables are not checked.
	Environ []string
}

// NonConfigEnvVars returns the UPICDC_* variables that are not
// configuration and that Load therefore accepts without reading them: the
// switches of upicdc's own test suite and benchmarks, which a developer may
// have exported in the shell that also runs upicdc.
func NonConfigEnvVars() []string {
	return []string{
		"UPICDC_BENCH_10M",           // cdc, cdc/delta: 10M-row benchmarks
		"UPICDC_TEST_CRASH_ALERTS",   // agg: TestAlertsKilledBetweenSteps's child
		"UPICDC_SERVE_LATENCY",       // cmd/upicdc: TestServeLatency
		"UPICDC_SERVE_LATENCY_FILES", // its file count
		"UPICDC_SERVE_LATENCY_ROWS",  // its rows per file
		"UPICDC_INTEROP_VENV",        // cdc/delta: the interop test's venv
		"UPICDC_SPARK_VENV",          // bench/spark: the Spark side-by-side venv
		"UPICDC_SQL_PYTHON",          // daemon/sqlserver: the clients test's venv python
		"UPICDC_SQL_BENCH",           // daemon/sqlserver: TestSQLBenchmarks
		"UPICDC_SQL_BENCH_ROWS",      // its raw table's size
		"UPICDC_TEST_CRASH_DIR",      // agg: crash test child
		"UPICDC_TEST_CRASH_STEP",
		"UPICDC_TEST_CRASH_BATCH",
		"UPICDC_TEST_CRASH_BACKFILL",
		"UPICDC_TEST_VACUUM_CRASH_TABLE",
		"UPICDC_TEST_COMPACT_DIR",
		"UPICDC_TEST_COMPACT_STEP",
		"UPICDC_TEST_ONLINE_DIR",
		"UPICDC_TEST_VACUUM_DIR",
		"UPICDC_TEST_VACUUM_KILL",
		"UPICDC_TEST_SWEEP_DIR", // store: the sweep killed test child
		"UPICDC_TEST_MERGE_DIR", // cdc: crash test child
		"UPICDC_TEST_MERGE_FILE",
	}
}

// envPrefix starts every variable upicdc reads.
const envPrefix = "UPICDC_"

// lookupIn returns a LookupEnv over KEY=VALUE entries; a later entry wins,
// as in os/exec.
func lookupIn(environ []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(environ) - 1; i >= 0; i-- {
			if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
}

// checkEnv returns an error for each non-empty UPICDC_* variable in environ
// that upicdc does not read, sorted by name, with a suggestion when a
// configuration variable is close enough to be the intended one.
func checkEnv(environ []string, ls []leaf) error {
	var vars []string
	for _, l := range ls {
		vars = append(vars, EnvVar(l.key))
	}
	known := append(append([]string{EnvConfigFile}, vars...), NonConfigEnvVars()...)
	var unknown []string
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && val != "" && !slices.Contains(known, name) && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	var errs []error
	for _, name := range unknown {
		err := ErrUnknownKey
		best, bestDist := "", max(2, len(name)/5)+1
		for _, c := range append([]string{EnvConfigFile}, vars...) {
			if d := editDistance(name, c); d < bestDist {
				best, bestDist = c, d
			}
		}
		if best != "" {
			err = fmt.Errorf("%w (did you mean %s?)", ErrUnknownKey, best)
		}
		errs = append(errs, fmt.Errorf("config: environment variable %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// Load merges defaults, the config file, UPICDC_* environment variables and
// flags, decodes the result and validates it. The error names every bad key,
// one per line, with where its value came from: problems in the file are
// prefixed "config FILE:", others end with "(from environment variable X)" or
// "(from flag --x)".
func Load(opts LoadOptions) (Config, error) {
	lookup, environ := opts.LookupEnv, opts.Environ
	switch {
	case lookup == nil && environ == nil:
		lookup, environ = os.LookupEnv, os.Environ()
	case lookup == nil:
		lookup = lookupIn(environ)
	}
	ls := leaves()
	if err := checkEnv(environ, ls); err != nil {
		return Config{}, err
	}
	known := make(map[string]leaf, len(ls))
	for _, l := range ls {
		known[l.key] = l
	}

	// Register every key with its default: viper only merges and decodes
	// keys it knows.
	v := viper.New()
	def := Default()
	for _, l := range ls {
		v.SetDefault(l.key, l.value(def))
	}

	o := origins{by: map[string]string{}}

	// File.
	o.file = opts.File
	label := o.file
	if o.file == "" {
		if p, ok := lookup(EnvConfigFile); ok && p != "" {
			o.file = p
			label = p + " (from " + EnvConfigFile + ")"
		}
	}
	if o.file != "" {
		settings, err := readFile(o.file)
		if err != nil {
			return Config{}, fmt.Errorf("config %s: %w", label, err)
		}
		present, errs := checkKeys(settings, "", known, sections())
		for _, fe := range errs {
			o.by[fe.Key] = originFile
		}
		if len(errs) > 0 {
			return Config{}, o.annotate(errs)
		}
		for _, k := range present {
			o.by[k] = originFile
		}
		if err := v.MergeConfigMap(settings); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", o.file, err)
		}
	}

	// Environment. viper's AutomaticEnv would work too, but an explicit
	// lookup over the known keys is easy to test and records the origin.
	for _, l := range ls {
		name := EnvVar(l.key)
		if val, ok := lookup(name); ok && val != "" {
			v.Set(l.key, val)
			o.by[l.key] = "environment variable " + name
		}
	}

	// Flags. v.Set (rather than viper's BindPFlag, which ranks below Set)
	// keeps flags above the environment.
	if opts.Flags != nil {
		names := make([]string, 0, len(opts.FlagKeys))
		for name := range opts.FlagKeys {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			key := opts.FlagKeys[name]
			if _, ok := known[key]; !ok {
				return Config{}, fmt.Errorf("config: flag --%s is mapped to %q, which is not a configuration key", name, key)
			}
			f := opts.Flags.Lookup(name)
			if f == nil || !f.Changed {
				continue
			}
			v.Set(key, f.Value.String())
			o.by[key] = "flag --" + name
		}
	}

	// Types: checked here, key by key, so that the error names the key and
	// where the value came from; the decode hook below does the same
	// conversions.
	var errs []*FieldError
	for _, l := range ls {
		if _, err := l.convert(v.Get(l.key)); err != nil {
			errs = append(errs, &FieldError{Key: l.key, Err: err})
		}
	}
	if len(errs) > 0 {
		return Config{}, o.annotate(errs)
	}

	var c Config
	if err := v.UnmarshalExact(&c, viper.DecodeHook(mapstructure.DecodeHookFuncType(decodeHook))); err != nil {
		// Not expected: checkKeys and convert have seen every key and value.
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if errs := c.fieldErrors(); len(errs) > 0 {
		return Config{}, o.annotate(errs)
	}
	return c, nil
}

const originFile = "file"

// origins records where each key's value came from, for error messages.
type origins struct {
	file string            // the config file, if any
	by   map[string]string // key -> originFile, "environment variable X" or "flag --x"
}

// annotate says where each bad value came from and joins the errors, one per line.
func (o origins) annotate(errs []*FieldError) error {
	out := make([]error, 0, len(errs))
	for _, fe := range errs {
		from := o.by[fe.Key]
		if i := strings.IndexByte(fe.Key, '['); i > 0 && from == "" {
			from = o.by[fe.Key[:i]] // alerts.rules[name].window: where alerts.rules came from
		}
		switch from {
		case originFile:
			out = append(out, fmt.Errorf("config %s: %w", o.file, fe))
		case "":
			out = append(out, fmt.Errorf("config: %w", fe))
		default:
			out = append(out, fmt.Errorf("config: %w (from %s)", fe, from))
		}
	}
	return errors.Join(out...)
}

// readFile parses a config file into nested maps with lower-case keys.
func readFile(path string) (map[string]any, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	var format string
	switch ext {
	case "yaml", "yml":
		format = "YAML"
	case "json":
		format = "JSON"
	case "toml":
		format = "TOML"
	default:
		return nil, fmt.Errorf("unsupported file type %q (use .yaml, .yml, .json or .toml)", filepath.Ext(path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil // an empty file means all defaults, whatever its type
	}
	fv := viper.New()
	fv.SetConfigType(ext)
	if err := fv.ReadConfig(bytes.NewReader(data)); err != nil {
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			err = pe.Unwrap()
		}
		// Keep the message on one line: yaml lists several problems on
		// indented lines of their own.
		return nil, fmt.Errorf("invalid %s: %w", format, oneLine{err})
	}
	// AllSettings drops keys written with no value (null), so they take
	// their defaults.
	return fv.AllSettings(), nil
}

// oneLine shows an error's message on one line.
type oneLine struct{ err error }

func (e oneLine) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e oneLine) Unwrap() error { return e.err }

// checkKeys walks a file's settings and returns the keys it sets, or an
// error for each unknown key and each section that is not a mapping.
func checkKeys(m map[string]any, prefix string, known map[string]leaf, secs map[string]bool) (present []string, errs []*FieldError) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		key, val := prefix+name, m[name]
		_, isLeaf := known[key]
		switch {
		case val == nil:
		case isLeaf:
			present = append(present, key) // the value's type is checked after merging
		case secs[key]:
			sub, ok := val.(map[string]any)
			if !ok {
				errs = append(errs, &FieldError{Key: key, Err: badValue(val, "is %s, not a section of keys (%s)", describe(val), strings.Join(sectionKeys(key, known), ", "))})
				continue
			}
			p, e := checkKeys(sub, key+".", known, secs)
			present, errs = append(present, p...), append(errs, e...)
		default:
			errs = append(errs, &FieldError{Key: key, Err: unknownKey(key, known, secs)})
		}
	}
	return present, errs
}

// sectionKeys lists the keys in a section, in struct order.
func sectionKeys(section string, known map[string]leaf) []string {
	var out []string
	for _, l := range leaves() {
		if strings.HasPrefix(l.key, section+".") {
			out = append(out, l.key)
		}
	}
	return out
}

// unknownKey returns ErrUnknownKey, with a suggestion when a known key is
// close enough to be the intended one.
func unknownKey(key string, known map[string]leaf, secs map[string]bool) error {
	cands := make([]string, 0, len(known)+len(secs))
	for k := range known {
		cands = append(cands, k)
	}
	for k := range secs {
		cands = append(cands, k)
	}
	slices.Sort(cands)
	best, bestDist := "", max(2, len(key)/5)+1
	for _, c := range cands {
		if d := editDistance(key, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		// A key written in the wrong section: "poll_interval" for "inbox.poll_interval".
		last := key[strings.LastIndexByte(key, '.')+1:]
		for _, c := range cands {
			if c[strings.LastIndexByte(c, '.')+1:] == last {
				best = c
				break
			}
		}
	}
	if best == "" {
		return ErrUnknownKey
	}
	return fmt.Errorf("%w (did you mean %q?)", ErrUnknownKey, best)
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	stringType = reflect.TypeFor[string]()
	intType    = reflect.TypeFor[int]()
	boolType   = reflect.TypeFor[bool]()
)

// decodeHook converts values for UnmarshalExact with the same rules as
// leaf.convert, instead of mapstructure's weak typing (which would read
// `poll_interval: 10` as 10ns and `trigger: true` as "1").
func decodeHook(_, to reflect.Type, data any) (any, error) {
	switch to {
	case durationType:
		return toDuration(data)
	case stringType:
		return toString(data)
	case intType:
		return toInt(data)
	case boolType:
		return toBool(data)
	case stringsType:
		return toStrings(data)
	}
	if to.Kind() == reflect.Slice && to.Elem().Kind() == reflect.Struct {
		return toList(data, to)
	}
	return data, nil
}

// convert converts a raw value from viper (from a file, the environment, a
// flag or the defaults) to the key's type.
func (l leaf) convert(raw any) (any, error) {
	switch l.kind {
	case kindDuration:
		return toDuration(raw)
	case kindInt:
		return toInt(raw)
	case kindBool:
		return toBool(raw)
	case kindStrings:
		return toStrings(raw)
	case kindList:
		return toList(raw, l.typ())
	default:
		return toString(raw)
	}
}

// toStrings accepts a list of strings (from a file, or the defaults) and
// one comma-separated string (the environment and flags are strings):
// "1h, 1d" is [1h 1d]. Empty items are dropped.
func toStrings(raw any) ([]string, error) {
	var items []string
	switch v := raw.(type) {
	case []string:
		items = v
	case string:
		items = strings.Split(v, ",")
	case []any:
		for _, e := range v {
			s, err := toString(e)
			if err != nil {
				return nil, badValue(e, "is %s; the list must hold strings", describe(e))
			}
			items = append(items, s)
		}
	default:
		return nil, badValue(raw, "is %s, not a list", describe(raw))
	}
	out := make([]string, 0, len(items))
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// toString accepts strings and numbers (`name: 2024` means "2024"); booleans,
// lists and sections are errors.
func toString(raw any) (string, error) {
	switch v := raw.(type) {
	case string:
		return v, nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", badValue(raw, "is %s, not a string", describe(raw))
}

// toInt accepts integers, whole floats (JSON numbers are floats) and decimal
// strings (the environment and flags are strings).
func toInt(raw any) (int, error) {
	rv := reflect.ValueOf(raw)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := rv.Int(); n >= math.MinInt && n <= math.MaxInt {
			return int(n), nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n := rv.Uint(); n <= math.MaxInt {
			return int(n), nil
		}
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f != math.Trunc(f) {
			return 0, badValue(raw, "is not a whole number")
		}
		if f >= math.MinInt && f < math.MaxInt {
			return int(f), nil
		}
	case reflect.String:
		n, err := strconv.Atoi(strings.TrimSpace(rv.String()))
		if errors.Is(err, strconv.ErrRange) {
			break
		}
		if err != nil {
			return 0, badValue(raw, "is not a whole number")
		}
		return n, nil
	default:
		return 0, badValue(raw, "is %s, not a whole number", describe(raw))
	}
	return 0, badValue(raw, "is out of range")
}

// toBool accepts booleans and the strings true and false (the environment
// and flags are strings).
func toBool(raw any) (bool, error) {
	switch v := raw.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, badValue(raw, "is not true or false")
	}
	return false, badValue(raw, "is %s, not true or false", describe(raw))
}

// toDuration accepts Go duration strings ("10s", "1m30s") and the number 0.
// Other numbers are errors: a bare 10 is ambiguous (10s? 10ms?).
func toDuration(raw any) (time.Duration, error) {
	switch v := raw.(type) {
	case time.Duration:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		d, err := time.ParseDuration(s)
		if err == nil {
			return d, nil
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return 0, badValue(raw, `is not a duration (a duration needs a unit, e.g. "10s")`)
		}
		return 0, badValue(raw, `is not a duration (e.g. "10s", "1m30s", "500ms")`)
	}
	switch rv := reflect.ValueOf(raw); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if rv.IsZero() {
			return 0, nil
		}
		return 0, badValue(raw, `is not a duration (a duration needs a unit, e.g. "10s")`)
	}
	return 0, badValue(raw, "is %s, not a duration", describe(raw))
}

// describe names the type of a value read from a file, for error messages.
func describe(v any) string {
	if _, ok := v.(time.Time); ok {
		return "a date"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a section"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Invalid:
		return "empty"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
