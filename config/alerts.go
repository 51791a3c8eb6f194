package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// AlertsConfig configures the alert rules over merchant_window_aggregates
// and where their transitions are delivered.
type AlertsConfig struct {
	// Rules are evaluated over each window a micro-batch changes; their
	// transitions are written to merchant_alerts.
	Rules []AlertRule `mapstructure:"rules"`
	// Alertmanager is a Prometheus Alertmanager to deliver to.
	Alertmanager AlertmanagerConfig `mapstructure:"alertmanager"`
	// Webhooks receive each transition as JSON.
	Webhooks []WebhookConfig `mapstructure:"webhooks"`
	// MaxAttempts is how often a delivery is tried before it becomes a dead
	// letter.
	MaxAttempts int `mapstructure:"max_attempts"`
	// RetryBackoff is the wait after a first failed delivery; it doubles on
	// each failure, up to a minute.
	RetryBackoff time.Duration `mapstructure:"retry_backoff"`
}

// AlertRule is one alert rule.
type AlertRule struct {
	// Name is the rule's name (alertname in Alertmanager).
	Name string `mapstructure:"name" json:"name"`
	// Window is one of windows.sizes.
	Window string `mapstructure:"window" json:"window"`
	// When is a CEL expression over the window's row.
	When string `mapstructure:"when" json:"when"`
	// Severity defaults to warning.
	Severity string `mapstructure:"severity" json:"severity,omitempty"`
}

// AlertmanagerConfig is a Prometheus Alertmanager.
type AlertmanagerConfig struct {
	// URL is its base URL (http://host:9093); "" delivers to none.
	URL string `mapstructure:"url"`
}

// WebhookConfig is one webhook receiver.
type WebhookConfig struct {
	URL string `mapstructure:"url" json:"url"`
	// Secret, when set, signs each body (X-Upicdc-Signature: HMAC-SHA256).
	Secret string `mapstructure:"secret" json:"secret,omitempty"`
}

var ruleNameRE = streamNameRE

// alertErrors checks the alerts section.
func (c Config) alertErrors(check func(string, error)) {
	seen := map[string]bool{}
	for i, r := range c.Alerts.Rules {
		key := fmt.Sprintf("alerts.rules[%d]", i)
		if r.Name != "" {
			key = fmt.Sprintf("alerts.rules[%s]", r.Name)
		}
		switch {
		case !ruleNameRE.MatchString(r.Name):
			check(key+".name", badValue(r.Name, "must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.' and '-'"))
		case seen[r.Name]:
			check(key+".name", badValue(r.Name, "names two rules"))
		case r.Name == "reconcile_differences":
			check(key+".name", badValue(r.Name, "is the built-in reconcile alert"))
		}
		seen[r.Name] = true
		switch {
		case len(c.Windows.Sizes) == 0:
			check(key+".window", badValue(r.Window, "is no window: windows.sizes is empty, so no windows are kept"))
		case !slices.Contains(c.Windows.Sizes, r.Window):
			check(key+".window", badValue(r.Window, "is not one of windows.sizes (%s)", strings.Join(c.Windows.Sizes, ", ")))
		}
		if strings.TrimSpace(r.When) == "" {
			check(key+".when", badValue(r.When, "must be a CEL expression, e.g. refunds_count >= 3 && refund_ratio > 0.2"))
		}
	}
	if u := c.Alerts.Alertmanager.URL; u != "" {
		check("alerts.alertmanager.url", checkURL(u))
	}
	for i, w := range c.Alerts.Webhooks {
		check(fmt.Sprintf("alerts.webhooks[%d].url", i), checkURL(w.URL))
	}
	if c.Alerts.MaxAttempts < 1 {
		check("alerts.max_attempts", badValue(c.Alerts.MaxAttempts, "must be at least 1"))
	}
	check("alerts.retry_backoff", positive(c.Alerts.RetryBackoff))
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badValue(s, "is not an http:// or https:// URL")
	}
	return nil
}

// toList converts a list of sections (from a file, or the defaults), or
// its JSON text (the environment), to a slice of typ (a slice of structs),
// refusing unknown keys inside the items.
func toList(raw any, typ reflect.Type) (any, error) {
	if s, ok := raw.(string); ok {
		if strings.TrimSpace(s) == "" {
			return reflect.Zero(typ).Interface(), nil
		}
		var items []any
		if err := json.Unmarshal([]byte(s), &items); err != nil {
			return nil, badValue(s, "is not a JSON list: %v", err)
		}
		raw = items
	}
	if raw == nil {
		return reflect.Zero(typ).Interface(), nil
	}
	if reflect.TypeOf(raw) == typ {
		return raw, nil
	}
	out := reflect.New(typ)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{ErrorUnused: true, Result: out.Interface(),
		DecodeHook: mapstructure.DecodeHookFuncType(func(_, to reflect.Type, data any) (any, error) {
			if to == stringType {
				return toString(data)
			}
			return data, nil
		})})
	if err != nil {
		return nil, err
	}
	if err := dec.Decode(raw); err != nil {
		return nil, badValue(describe(raw), "is not a list of %s: %v", typ.Elem().Name(), oneLine{err})
	}
	if out.Elem().Len() == 0 {
		return reflect.Zero(typ).Interface(), nil // one empty list, whatever the spelling
	}
	return out.Elem().Interface(), nil
}

// formatList writes a list as the JSON toList reads back.
func formatList(v any) string {
	rv := reflect.ValueOf(v)
	items := make([]map[string]any, rv.Len())
	for i := range items {
		items[i] = map[string]any{}
		e := rv.Index(i)
		for j := range e.NumField() {
			items[i][e.Type().Field(j).Tag.Get("mapstructure")] = e.Field(j).Interface()
		}
	}
	b, _ := json.Marshal(items) // strings only: cannot fail
	return string(b)
}

// typ is the key's Go type.
func (l leaf) typ() reflect.Type { return reflect.TypeFor[Config]().FieldByIndex(l.index).Type }
