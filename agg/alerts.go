package agg

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/interpreter"

	"github.com/upicdc/upicdc/store"
)

// AlertsTable is merchant_alerts: per rule, merchant and window, whether
// the rule fires, with when it last changed state. Every change of a row is
// a transition (firing ↔ resolved); its change feed is the alerts' outbox.
const AlertsTable = "merchant_alerts"

// Alert states.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// ReconcileRule is the built-in alert raised when a scheduled reconcile
// finds differences; no configured rule may take its name.
const ReconcileRule = "reconcile_differences"

// DefaultSeverity is a rule's severity when it names none.
const DefaultSeverity = "warning"

// Rule is one alert rule over merchant_window_aggregates: When, a CEL
// expression over a window row, is evaluated for each window of size Window
// that a micro-batch changes.
type Rule struct {
	Name     string `json:"name"`
	Window   string `json:"window"`
	When     string `json:"when"`
	Severity string `json:"severity"`
}

// RuleError is a rule refused at start: its expression does not compile,
// is not a bool, or it names a window size that is not kept.
type RuleError struct {
	Rule string
	Err  error
}

func (e *RuleError) Error() string { return fmt.Sprintf("alert rule %q: %v", e.Rule, e.Err) }
func (e *RuleError) Unwrap() error { return e.Err }

// Errors of rules.
var (
	// ErrRuleWindow: the rule's window is not one of windows.sizes.
	ErrRuleWindow = errors.New("window size not kept")
	// ErrRuleExpr: the rule's expression does not compile or is not a bool.
	ErrRuleExpr = errors.New("bad expression")
)

const (
	aRule = iota
	aMerchant
	aStart
	aSize
	aSeverity
	aState
	aFiredAt
	aResolvedAt
	aValue
	aRawVersion
	aColumns
)

type compiledRule struct {
	Rule
	prg cel.Program
}

// alerts keeps merchant_alerts. For each window row a micro-batch changes
// (the windows table's changes in the same micro-batch) and each rule on its
// size: if the rule holds and the alert is not firing, it fires (fired_at =
// now, value = the window's metrics); if it does not hold (or the window
// was deleted) and it fires, it is resolved. Nothing else is written, so
// every change of the table is one transition.
type alerts struct {
	rules []compiledRule
	win   windows
}

// ruleEnv is the CEL environment of a rule: the window row's columns.
func ruleEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("merchant_id", cel.StringType),
		cel.Variable("window_size", cel.StringType),
		cel.Variable("window_start", cel.TimestampType),
		cel.Variable("total_sales", cel.DoubleType),
		cel.Variable("total_refunds", cel.DoubleType),
		cel.Variable("net_sales", cel.DoubleType),
		cel.Variable("sales_count", cel.IntType),
		cel.Variable("refunds_count", cel.IntType),
		cel.Variable("refund_ratio", cel.DoubleType),
	)
}

// CheckRules compiles rules against windows of sizes, returning a
// *RuleError naming the first bad one.
func CheckRules(rules []Rule, sizes []string) error {
	w, err := newWindows(Config{WindowSizes: sizes, Zone: time.UTC})
	if err != nil {
		return err
	}
	_, err = newAlerts(Config{Rules: rules}, w)
	return err
}

func newAlerts(cfg Config, w windows) (alerts, error) {
	a := alerts{win: w}
	if len(cfg.Rules) == 0 {
		return a, nil
	}
	env, err := ruleEnv()
	if err != nil {
		return a, fmt.Errorf("alert rules: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if r.Severity == "" {
			r.Severity = DefaultSeverity
		}
		switch {
		case r.Name == "":
			return a, &RuleError{Rule: r.When, Err: errors.New("has no name")}
		case seen[r.Name]:
			return a, &RuleError{Rule: r.Name, Err: errors.New("named twice")}
		case r.Name == ReconcileRule:
			return a, &RuleError{Rule: r.Name, Err: errors.New("is the built-in reconcile alert's name")}
		case !slices.Contains(w.sizes, r.Window):
			return a, &RuleError{Rule: r.Name, Err: fmt.Errorf("%w: window %q is not one of windows.sizes (%s)", ErrRuleWindow, r.Window, strings.Join(w.sizes, ", "))}
		}
		seen[r.Name] = true
		ast, iss := env.Compile(r.When)
		if iss != nil && iss.Err() != nil {
			return a, &RuleError{Rule: r.Name, Err: fmt.Errorf("%w: %v", ErrRuleExpr, iss.Err())}
		}
		if ast.OutputType() != cel.BoolType {
			return a, &RuleError{Rule: r.Name, Err: fmt.Errorf("%w: %q is a %s, not a bool", ErrRuleExpr, r.When, ast.OutputType())}
		}
		prg, err := env.Program(ast)
		if err != nil {
			return a, &RuleError{Rule: r.Name, Err: fmt.Errorf("%w: %v", ErrRuleExpr, err)}
		}
		a.rules = append(a.rules, compiledRule{Rule: r, prg: prg})
	}
	return a, nil
}

func (a alerts) Def() store.TableDef {
	rules := make([]Rule, len(a.rules))
	for i, r := range a.rules {
		rules[i] = r.Rule
	}
	enc, _ := json.Marshal(rules) // plain strings: cannot fail
	zone := a.win.zone
	return store.TableDef{
		Name:    AlertsTable,
		Doc:     "per alert rule, merchant and window: firing or resolved, with when and at which values it changed",
		Derived: true,
		Properties: map[string]string{
			"alerts.rules":     string(enc),
			"windows.timezone": zone.String(),
		},
		Schema: store.Schema{KeyColumns: 3, Columns: []store.Column{
			{Name: "rule", Type: store.String, Doc: "the alert rule's name"},
			{Name: "merchant_id", Type: store.String, Doc: "the merchant"},
			{Name: "window_start", Type: store.Timestamp, Zone: zone, Doc: "the window's start"},
			{Name: "window_size", Type: store.String, Doc: "the rule's window size"},
			{Name: "severity", Type: store.String, Doc: "the rule's severity at the transition"},
			{Name: "state", Type: store.Enum, Enum: []string{AlertFiring, AlertResolved}, Doc: "firing or resolved"},
			{Name: "fired_at", Type: store.Timestamp, Zone: zone, Doc: "when the alert last fired"},
			{Name: "resolved_at", Type: store.Timestamp, Zone: zone, Nullable: true, Doc: "when it was resolved (null while firing)"},
			{Name: "value", Type: store.String, Doc: "the window's metrics at the transition (JSON)"},
			{Name: "raw_version", Type: store.Int, Doc: "the raw version of the transition"},
		}},
	}
}

// Bookkeeping: when, at which values and with which severity an alert
// changed is its history, which a recomputation cannot know; what it can
// check is the state.
func (alerts) Bookkeeping() []string {
	return []string{"severity", "fired_at", "resolved_at", "value", "raw_version"}
}

// Inputs: the alerts are evaluated over the windows the same micro-batch
// changed.
func (alerts) Inputs() []string { return []string{WindowsTable} }

// windowVars is a window row as a rule's CEL activation.
type windowVars struct{ r store.Row }

func (v windowVars) ResolveName(name string) (any, bool) {
	r := v.r
	switch name {
	case "merchant_id":
		return r[wMerchant].Str, true
	case "window_size":
		return r[wSize].Str, true
	case "window_start":
		return time.UnixMicro(r[wStart].Int).UTC(), true
	case "total_sales":
		return rupees(r[wSales].Int), true
	case "total_refunds":
		return rupees(r[wRefunds].Int), true
	case "net_sales":
		return rupees(r[wNet].Int), true
	case "sales_count":
		return r[wSalesCount].Int, true
	case "refunds_count":
		return r[wRefundsCount].Int, true
	case "refund_ratio":
		return refundRatio(r), true
	}
	return nil, false
}

func (windowVars) Parent() interpreter.Activation { return nil }

func rupees(p int64) float64 { return float64(p) / 100 }

// refundRatio is −total_refunds / total_sales, 0 without sales.
func refundRatio(r store.Row) float64 {
	if r[wSales].Int == 0 {
		return 0
	}
	return float64(-r[wRefunds].Int) / float64(r[wSales].Int)
}

// holds evaluates the rule on window row r. An expression that fails at
// run time (an integer division by zero, say) does not hold: a rule must
// never stop the pipeline.
func (c *compiledRule) holds(r store.Row) bool {
	out, _, err := c.prg.Eval(windowVars{r})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// AlertValue is the metrics of a window at a transition (the value column).
type AlertValue struct {
	TotalSales   string  `json:"total_sales"`
	TotalRefunds string  `json:"total_refunds"`
	NetSales     string  `json:"net_sales"`
	SalesCount   int64   `json:"sales_count"`
	RefundsCount int64   `json:"refunds_count"`
	RefundRatio  float64 `json:"refund_ratio"`
}

func windowValue(r store.Row) string {
	v := AlertValue{
		TotalSales:   store.Paise(r[wSales].Int).Decimal(),
		TotalRefunds: store.Paise(r[wRefunds].Int).Decimal(),
		NetSales:     store.Paise(r[wNet].Int).Decimal(),
		SalesCount:   r[wSalesCount].Int, RefundsCount: r[wRefundsCount].Int,
		RefundRatio: refundRatio(r),
	}
	b, _ := json.Marshal(v) // plain fields: cannot fail
	return string(b)
}

// verdict is what the rules say about one alert key now.
type verdict struct {
	key   store.Row // rule, merchant, window_start
	rule  *compiledRule
	holds bool
	win   store.Row // the window row (nil: deleted)
}

// next returns the alert row that follows cur (nil: none) given v, or nil
// when nothing changes.
func (v *verdict) next(cur store.Row, now int64, rawVersion int64) store.Row {
	firing := cur != nil && cur[aState].Str == AlertFiring
	switch {
	case v.holds && !firing:
		r := make(store.Row, aColumns)
		copy(r, v.key)
		r[aSize] = store.Value{Str: v.rule.Window}
		r[aSeverity] = store.Value{Str: v.rule.Severity}
		r[aState] = store.Value{Str: AlertFiring}
		r[aFiredAt] = store.Value{Int: now}
		r[aResolvedAt] = store.Value{Null: true}
		r[aValue] = store.Value{Str: windowValue(v.win)}
		r[aRawVersion] = store.Value{Int: rawVersion}
		return r
	case !v.holds && firing:
		r := slices.Clone(cur)
		r[aState] = store.Value{Str: AlertResolved}
		r[aResolvedAt] = store.Value{Int: now}
		if v.win != nil {
			r[aValue] = store.Value{Str: windowValue(v.win)}
		} else {
			r[aValue] = store.Value{Str: "{}"}
		}
		r[aRawVersion] = store.Value{Int: rawVersion}
		return r
	}
	return nil
}

// judge evaluates the rules over window rows (deleted: their last images),
// keyed by the alert's encoded key.
func (a alerts) judge(s *store.Schema, rows []store.Row, deleted []bool, into map[string]*verdict) {
	var kb []byte
	for i, r := range rows {
		for j := range a.rules {
			rule := &a.rules[j]
			if rule.Window != r[wSize].Str {
				continue
			}
			v := &verdict{key: store.Row{{Str: rule.Name}, r[wMerchant], r[wStart]}, rule: rule}
			if deleted == nil || !deleted[i] {
				v.win, v.holds = r, rule.holds(r)
			}
			kb, _ = s.EncodeKey(kb[:0], v.key) // merchant ids and rule names hold no NUL (cdc and config refuse them)
			into[string(kb)] = v
		}
	}
}

func (a alerts) Apply(b *Batch, w *store.TableWriter) error {
	if len(a.rules) == 0 {
		return nil
	}
	changes := b.Changes[WindowsTable]
	rows := make([]store.Row, 0, len(changes))
	deleted := make([]bool, 0, len(changes))
	for _, c := range changes {
		if c.Type == store.UpdatePreimage {
			continue
		}
		rows = append(rows, c.Row)
		deleted = append(deleted, c.Type == store.Delete)
	}
	vs := map[string]*verdict{}
	a.judge(w.Schema(), rows, deleted, vs)
	now := b.At.UnixMicro()
	for _, k := range slices.Sorted(maps.Keys(vs)) {
		v := vs[k]
		cur, found, err := w.Get(v.key)
		if err != nil {
			return err
		}
		var before store.Row
		if found && !cur.Deleted {
			before = cur.Row
		}
		next := v.next(before, now, b.RawVersion)
		switch {
		case next == nil:
		case before == nil:
			err = w.Insert(next)
		default:
			err = w.Update(before, next)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a alerts) Build(u *Universe) ([]store.Row, error) { return a.BuildFrom(u, nil) }

// BuildFrom computes the table from u given what it holds (have, in key
// order): alerts whose state the rules agree with are kept as they are (so
// a rebuild writes, and delivers, only real transitions); the others
// transition now. Alerts of rules no longer configured are resolved.
func (a alerts) BuildFrom(u *Universe, have []store.Row) ([]store.Row, error) {
	winRows, err := a.win.Build(u)
	if err != nil {
		return nil, err
	}
	s := a.Def().Schema
	vs := map[string]*verdict{}
	a.judge(&s, winRows, nil, vs)
	now := time.Now().UnixMicro()
	out := make(map[string]store.Row, len(have)+len(vs))
	var kb []byte
	for _, h := range have {
		kb, _ = s.EncodeKey(kb[:0], h)
		if h[aRule].Str == ReconcileRule {
			out[string(kb)] = h // not a rule's: only a reconcile run changes it
			continue
		}
		v := vs[string(kb)]
		if v == nil {
			// No window holds the rule here now (or the rule is gone).
			v = &verdict{key: h[:3]}
		}
		delete(vs, string(kb))
		if next := v.next(h, now, u.RawVersion); next != nil {
			out[string(kb)] = next
		} else {
			out[string(kb)] = h
		}
	}
	for k, v := range vs {
		if next := v.next(nil, now, u.RawVersion); next != nil {
			out[k] = next
		}
	}
	rows := make([]store.Row, 0, len(out))
	for _, k := range slices.Sorted(maps.Keys(out)) {
		rows = append(rows, out[k])
	}
	return rows, nil
}

// Alert is one row of merchant_alerts, typed.
type Alert struct {
	Rule        string
	MerchantID  string
	WindowStart time.Time
	WindowSize  string
	Severity    string
	State       string
	FiredAt     time.Time
	ResolvedAt  *time.Time
	Value       json.RawMessage
	RawVersion  int64
}

// AlertOf converts a row of merchant_alerts.
func AlertOf(r store.Row) Alert {
	a := Alert{Rule: r[aRule].Str, MerchantID: r[aMerchant].Str, WindowStart: time.UnixMicro(r[aStart].Int).UTC(),
		WindowSize: r[aSize].Str, Severity: r[aSeverity].Str, State: r[aState].Str,
		FiredAt: time.UnixMicro(r[aFiredAt].Int).UTC(), Value: json.RawMessage(r[aValue].Str), RawVersion: r[aRawVersion].Int}
	if !r[aResolvedAt].Null {
		t := time.UnixMicro(r[aResolvedAt].Int).UTC()
		a.ResolvedAt = &t
	}
	if !json.Valid(a.Value) {
		a.Value = json.RawMessage("{}")
	}
	return a
}
