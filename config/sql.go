package config

import (
	"encoding/hex"
	"net"
	"strings"
	"time"
)

// SQLConfig configures the daemon's read-only SQL server (MySQL protocol).
type SQLConfig struct {
	// Listen is the host:port the SQL server listens on; "" turns it off.
	// Without Users it must be a loopback address.
	Listen string `mapstructure:"listen"`
	// Users are the accounts, each "name:hash" where hash is a bcrypt hash
	// ($2a$, $2b$ or $2y$) or "sha256:" and the password's SHA-256 in hex.
	// Empty: anonymous access, on loopback only.
	Users []string `mapstructure:"users"`
	// QueryTimeout bounds how long one query may run.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`
	// MaxRows bounds how many rows one query may read from the store.
	MaxRows int `mapstructure:"max_rows"`
}

// SQLUser is one entry of sql.users.
type SQLUser struct {
	Name string
	// Hash is the bcrypt hash or "sha256:" and 64 hex digits.
	Hash string
}

// ParseSQLUsers parses sql.users.
func (c SQLConfig) ParseSQLUsers() ([]SQLUser, error) {
	var out []SQLUser
	seen := map[string]bool{}
	for _, entry := range c.Users {
		name, hash, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || name == "" {
			return nil, &FieldError{Key: "sql.users", Err: badValue(redact(entry), `is not "name:hash"`)}
		}
		if seen[name] {
			return nil, &FieldError{Key: "sql.users", Err: badValue(name, "is listed twice")}
		}
		seen[name] = true
		switch {
		case strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$"):
			if len(hash) != 60 {
				return nil, &FieldError{Key: "sql.users", Err: badValue(name, "has a bcrypt hash of %d characters, want 60", len(hash))}
			}
		case strings.HasPrefix(hash, "sha256:"):
			if b, err := hex.DecodeString(hash[len("sha256:"):]); err != nil || len(b) != 32 {
				return nil, &FieldError{Key: "sql.users", Err: badValue(name, "has a sha256 hash that is not 64 hex digits")}
			}
		default:
			return nil, &FieldError{Key: "sql.users", Err: badValue(name,
				`has no password hash: give "name:$2b$..." (bcrypt, e.g. htpasswd -bnBC 10 "" PASSWORD | tr -d ':\n') or "name:sha256:HEX" (printf %%s PASSWORD | sha256sum), never the password`)}
		}
		out = append(out, SQLUser{Name: name, Hash: hash})
	}
	return out, nil
}

// redact keeps a malformed sql.users entry's name and hides the rest: it
// may be a password.
func redact(entry string) string {
	if name, _, ok := strings.Cut(entry, ":"); ok {
		return name + ":…"
	}
	return "…"
}

// SQLLoopback reports whether sql.listen is a loopback address (a host
// name other than localhost counts as not loopback).
func (c SQLConfig) SQLLoopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c SQLConfig) fieldErrors() []*FieldError {
	var out []*FieldError
	if c.Listen != "" {
		if err := checkListen(c.Listen); err != nil {
			out = append(out, &FieldError{Key: "sql.listen", Err: err})
		}
	}
	if _, err := c.ParseSQLUsers(); err != nil {
		out = append(out, err.(*FieldError))
	}
	if err := positive(c.QueryTimeout); err != nil {
		out = append(out, &FieldError{Key: "sql.query_timeout", Err: err})
	}
	if c.MaxRows < 1 {
		out = append(out, &FieldError{Key: "sql.max_rows", Err: badValue(c.MaxRows, "must be at least 1")})
	}
	return out
}
