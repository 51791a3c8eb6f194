package sqlserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	gserver "github.com/dolthub/go-mysql-server/server"
	gsql "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	"golang.org/x/crypto/bcrypt"

	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/store"
)

// ErrNoUsers means sql.listen is not a loopback address and sql.users is
// empty: anonymous access is for loopback only.
var ErrNoUsers = errors.New("sql.listen is not a loopback address and sql.users is empty: anyone who can reach it could read every transaction; add sql.users or listen on 127.0.0.1")

// ServerOptions configures a Server.
type ServerOptions struct {
	// Listen is the TCP host:port (sql.listen).
	Listen string
	// Users are the accounts (sql.users); none means anonymous access,
	// which only a loopback Listen allows.
	Users []config.SQLUser
	// Engine configures the queries.
	Engine Options
}

// Server is the MySQL-protocol server over a store.
type Server struct {
	e   *Engine
	ln  net.Listener
	srv *gserver.Server
}

// NewServer binds opts.Listen and returns a server over db; Serve accepts
// connections.
func NewServer(db *store.DB, opts ServerOptions) (*Server, error) {
	if len(opts.Users) == 0 && !(config.SQLConfig{Listen: opts.Listen}).SQLLoopback() {
		return nil, fmt.Errorf("sql.listen %q: %w", opts.Listen, ErrNoUsers)
	}
	e := NewEngine(db, opts.Engine)
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("sql.listen %q: %w", opts.Listen, err)
	}
	auth := newAuth(opts.Users)
	cfg := gserver.Config{
		Protocol: "tcp",
		Address:  ln.Addr().String(),
		Listener: ln,
		// Passwords arrive in clear (mysql_clear_password) to be checked
		// against the configured hashes; see the package doc.
		AllowClearTextWithoutTLS: true,
		ProtocolListenerFactory: func(cfg gserver.Config, lc mysql.ListenerConfig, sel gserver.ServerEventListener) (gserver.ProtocolListener, error) {
			lc.AuthServer = auth
			lc.Handler = readOnlyHandler{lc.Handler}
			return gserver.MySQLProtocolListenerFactory(cfg, lc, sel)
		},
	}
	sb := func(_ context.Context, conn *mysql.Conn, addr string) (gsql.Session, error) {
		host := ""
		if conn.RemoteAddr() != nil {
			host, _, _ = net.SplitHostPort(conn.RemoteAddr().String())
		}
		client := gsql.Client{Address: host, User: conn.User, Capabilities: conn.Capabilities}
		return e.newSession(gsql.NewBaseSessionWithClientServer(addr, client, conn.ConnectionID)), nil
	}
	srv, err := gserver.NewServer(cfg, e.eng, gsql.NewContext, sb, nil)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("sql server: %w", err)
	}
	return &Server{e: e, ln: ln, srv: srv}, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close.
func (s *Server) Serve() error { return s.srv.Start() }

// Close stops accepting connections and closes the open ones.
func (s *Server) Close() error { return s.srv.Close() }

// readOnlyHandler says plainly why a statement that writes is refused:
// go-mysql-server says "table doesn't support INSERT INTO" and the like.
type readOnlyHandler struct{ mysql.Handler }

func (h readOnlyHandler) ComQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	return refusal(h.Handler.ComQuery(ctx, c, query, callback))
}

func (h readOnlyHandler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	rest, err := h.Handler.ComMultiQuery(ctx, c, query, callback)
	return rest, refusal(err)
}

func (h readOnlyHandler) ComStmtExecute(ctx context.Context, c *mysql.Conn, prepare *mysql.PrepareData, callback func(*sqltypes.Result) error) error {
	return refusal(h.Handler.ComStmtExecute(ctx, c, prepare, callback))
}

// refusal turns go-mysql-server's refusals of a write into ErrReadOnly's
// message (MySQL error 1290, like a server run with --read-only).
func refusal(err error) error {
	if err == nil || !isWriteRefusal(err) {
		return err
	}
	return mysql.NewSQLError(mysql.EROptionPreventsStatement, mysql.SSUnknownSQLState, "%s", ErrReadOnly.Error())
}

func isWriteRefusal(err error) bool {
	for _, k := range []interface{ Is(error) bool }{
		gsql.ErrReadOnly, gsql.ErrReadOnlyTransaction, gsql.ErrDatabaseWriteLocked,
		gsql.ErrCreateTableNotSupported, gsql.ErrDropTableNotSupported, gsql.ErrRenameTableNotSupported,
		plan.ErrInsertIntoNotSupported, plan.ErrReplaceIntoNotSupported, plan.ErrDeleteFromNotSupported,
		plan.ErrUpdateNotSupported, plan.ErrTruncateNotSupported, plan.ErrOnDuplicateKeyUpdateNotSupported,
	} {
		if k.Is(err) {
			return true
		}
	}
	msg := err.Error()
	// The handler hands errors over as *mysql.SQLError, which keeps only
	// the message of go-mysql-server's error kinds.
	return strings.Contains(msg, "is read-only") || strings.Contains(msg, "read only mode") || strings.Contains(msg, "table doesn't support") ||
		strings.HasPrefix(msg, "tables cannot be")
}

// auth checks logins: with users, their password against the configured
// hash (sent by the client with mysql_clear_password); without, anyone.
type auth struct {
	users   map[string]string
	methods []mysql.AuthMethod
}

func newAuth(users []config.SQLUser) *auth {
	a := &auth{users: map[string]string{}}
	for _, u := range users {
		a.users[u.Name] = u.Hash
	}
	if len(users) == 0 {
		a.methods = []mysql.AuthMethod{mysql.NewMysqlNativeAuthMethod(anyone{}, anyone{})}
	} else {
		a.methods = []mysql.AuthMethod{mysql.NewMysqlClearAuthMethod(a, a)}
	}
	return a
}

func (a *auth) AuthMethods() []mysql.AuthMethod { return a.methods }

func (a *auth) DefaultAuthMethodDescription() mysql.AuthMethodDescription {
	return a.methods[0].Name()
}

// HandleUser accepts every name; a wrong one fails like a wrong password.
func (a *auth) HandleUser(string, net.Addr) bool { return true }

// UserEntryWithPassword checks a password against the user's hash.
func (a *auth) UserEntryWithPassword(_ []*x509.Certificate, user, password string, remote net.Addr) (mysql.Getter, error) {
	if hash, ok := a.users[user]; ok && passwordMatches(hash, password) {
		return gsql.MysqlConnectionUser{User: user, Host: hostOf(remote)}, nil
	}
	return nil, mysql.NewSQLError(mysql.ERAccessDeniedError, mysql.SSAccessDeniedError, "Access denied for user '%v'", user)
}

// passwordMatches checks password against a bcrypt or "sha256:HEX" hash.
func passwordMatches(hash, password string) bool {
	if hexSum, ok := strings.CutPrefix(hash, "sha256:"); ok {
		want, err := hex.DecodeString(hexSum)
		sum := sha256.Sum256([]byte(password))
		return err == nil && subtle.ConstantTimeCompare(want, sum[:]) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

func hostOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// anyone is anonymous access: every login is accepted (loopback only).
type anyone struct{}

func (anyone) HandleUser(string, net.Addr) bool { return true }

func (anyone) UserEntryWithHash(_ []*x509.Certificate, _ []byte, user string, _ []byte, remote net.Addr) (mysql.Getter, error) {
	return gsql.MysqlConnectionUser{User: user, Host: hostOf(remote)}, nil
}
