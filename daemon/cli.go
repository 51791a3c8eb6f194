package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/upicdc/upicdc/store"
)

// SocketName is the Unix socket in the data dir through which read
// commands run inside `serve` (which holds the store's lock).
const SocketName = "upicdc.sock"

// SocketPath is the command socket of dataDir.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// CommandRequest is one CLI invocation forwarded to the daemon.
type CommandRequest struct {
	// Args are the command line's arguments (os.Args[1:]).
	Args []string `json:"args"`
	// Environ is the caller's environment (UPICDC_* and the like).
	Environ []string `json:"environ"`
	// Dir is the caller's working directory: relative paths are its.
	Dir string `json:"dir"`
}

// CommandFunc runs a forwarded command against the daemon's open store,
// writing what the command prints to stdout and stderr, and returns its
// exit status.
type CommandFunc func(ctx context.Context, db *store.DB, req CommandRequest, stdout, stderr io.Writer) int

// Frames of the socket's reply: a kind byte, a big-endian uint32 length,
// the payload. The exit frame's payload is the status as 4 bytes.
const (
	frameStdout = 'o'
	frameStderr = 'e'
	frameExit   = 'x'
)

// commandServer serves the command socket.
type commandServer struct {
	ln  net.Listener
	run func(ctx context.Context, req CommandRequest, stdout, stderr io.Writer) int
	wg  sync.WaitGroup
}

// listenCommands binds the data dir's socket, readable by its owner only.
// A socket left by a daemon that died is replaced: Open holds the store's
// exclusive lock, so no other daemon serves this data dir.
func listenCommands(dataDir string) (net.Listener, error) {
	path := SocketPath(dataDir)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("command socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("command socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("command socket %s: %w", path, err)
	}
	return ln, nil
}

// serve accepts connections until ctx is done; each runs one command.
func (s *commandServer) serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		_ = s.ln.Close()
	}()
	defer s.wg.Wait()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("command socket: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.handle(ctx, conn)
		}()
	}
}

func (s *commandServer) handle(ctx context.Context, conn net.Conn) {
	var req CommandRequest
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		return
	}
	// A client that hangs up cancels its command.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &frameWriter{conn: conn, cancel: cancel}
	code := s.run(ctx, req, w.stream(frameStdout), w.stream(frameStderr))
	_ = w.frame(frameExit, binary.BigEndian.AppendUint32(nil, uint32(code)))
}

// frameWriter writes frames to one connection (stdout and stderr may be
// written from different goroutines).
type frameWriter struct {
	mu     sync.Mutex
	conn   net.Conn
	cancel context.CancelFunc
}

func (w *frameWriter) frame(kind byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	hdr := binary.BigEndian.AppendUint32([]byte{kind}, uint32(len(p)))
	if _, err := w.conn.Write(append(hdr, p...)); err != nil {
		w.cancel()
		return err
	}
	return nil
}

type streamWriter struct {
	w    *frameWriter
	kind byte
}

func (w *frameWriter) stream(kind byte) io.Writer { return streamWriter{w, kind} }

func (s streamWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 1 << 20 {
		if err := s.w.frame(s.kind, p[off:min(len(p), off+1<<20)]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// ErrNoDaemon means no daemon answers on the data dir's command socket.
var ErrNoDaemon = errors.New("no upicdc serve answers on the command socket")

// Forward runs req in the daemon serving dataDir and copies what it prints
// to stdout and stderr; it returns the command's exit status. It fails with
// ErrNoDaemon when no daemon listens (no socket, or one left by a daemon
// that died).
func Forward(ctx context.Context, dataDir string, req CommandRequest, stdout, stderr io.Writer) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", SocketPath(dataDir))
	if err != nil {
		return 0, fmt.Errorf("%w (%v)", ErrNoDaemon, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return 0, fmt.Errorf("forward to upicdc serve: %w", err)
	}
	r := bufio.NewReader(conn)
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("forward to upicdc serve: the daemon hung up before the command finished: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		switch hdr[0] {
		case frameStdout, frameStderr:
			dst := stdout
			if hdr[0] == frameStderr {
				dst = stderr
			}
			if _, err := io.CopyN(dst, r, int64(n)); err != nil {
				return 0, fmt.Errorf("forward to upicdc serve: %w", err)
			}
		case frameExit:
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil || n != 4 {
				return 0, fmt.Errorf("forward to upicdc serve: bad exit frame")
			}
			return int(binary.BigEndian.Uint32(b)), nil
		default:
			return 0, fmt.Errorf("forward to upicdc serve: unknown frame %q", hdr[0])
		}
	}
}
