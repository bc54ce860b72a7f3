// Package snapshot is a camd module from outside the standard set: it serves
// the cam's latest still at GET /api/snapshot to clients granted the scope
// "snapshot", and counts the snapshots it serves in its own data directory.
//
// It is an example for firmware builders (docs/modules.md walks through it):
// it uses only what any module may, app.Deps, and plugs into a camd binary
// of its own, cmd/camd-snapshot, by a blank import.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/app"
	"camd/auth"
	"camd/config"
	"camd/platform/atomicfile"
	"camd/platform/clock"
)

func init() { app.Register(Info()) }

// ID names the module, and its directory under the data directory.
const ID = "snapshot"

// Scope is what a client token needs to fetch a snapshot.
const Scope = "snapshot"

// FileFlag names the module's one setting: the JPEG the video pipeline
// writes.
const FileFlag = "snapshot-file"

// Path is the module's one route.
const Path = "/api/snapshot"

// StateFile is the module's state in its directory: {"served": N}.
const StateFile = "count.json"

// FlushInterval is how often Run writes a changed count. A cam's flash
// wears with every write, and a count lost to a power cut is a minute's
// worth, so it is not written per request.
const FlushInterval = time.Minute

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{
		ID:  ID,
		New: func() app.Module { return &Module{every: FlushInterval} },
		Scopes: []auth.Scope{
			{Name: Scope, Description: "fetch the camera's latest still image"},
		},
		Flags: []config.Flag{{
			Name: FileFlag, Env: "CAMD_SNAPSHOT_FILE",
			Usage: "JPEG file to serve at " + Path + ", as the video pipeline replaces it (write a temporary file, rename it over); empty serves a generated test card",
		}},
	}
}

// Interface guards: the lifecycle the host calls, in this order: Provision,
// Validate, Run (while serving), Cleanup.
var (
	_ app.Module       = (*Module)(nil)
	_ app.Validator    = (*Module)(nil)
	_ app.Runner       = (*Module)(nil)
	_ app.CleanerUpper = (*Module)(nil)
	_ app.Reporter     = (*Module)(nil)
)

// Module is the snapshot endpoint.
type Module struct {
	log   *slog.Logger
	clock clock.Clock
	file  string // the pipeline's JPEG; "" serves card
	card  []byte // the generated default image
	state string // path of StateFile
	every time.Duration

	served  atomic.Uint64
	last    atomic.Int64 // Unix nanoseconds of the last snapshot served, 0 for none
	missing atomic.Bool  // the file was missing at the last request, logged once

	flushMu sync.Mutex // one flush at a time: Run's last and Cleanup's
	saved   uint64     // the count on disk, under flushMu
}

// Provision reads the module's flag, loads the count from the module's
// directory, makes the default image and mounts GET /api/snapshot behind
// the bearer check for the scope snapshot.
func (m *Module) Provision(d app.Deps) error {
	m.log, m.clock, m.file = d.Log, d.Clock, d.Config.String(FileFlag)
	dir, err := d.DataDir()
	if err != nil {
		return err
	}
	m.state = dir.Join(StateFile)
	n, err := load(m.state)
	var damaged *damagedError
	switch {
	case errors.As(err, &damaged):
		// Only possible from outside camd, as writes are atomic. A count is
		// not worth keeping the cam down for: keep the file for whoever
		// damaged it, and count from zero.
		bad, mvErr := atomicfile.MoveAside(m.state, d.Clock.Now())
		if mvErr != nil {
			return fmt.Errorf("snapshot count: %w", mvErr)
		}
		d.Log.Warn("snapshot count damaged; moved it aside and counting from zero", "moved_to", bad, "err", err)
	case err != nil:
		return fmt.Errorf("snapshot count: %w", err) // an unreadable directory: a fault to fix
	}
	m.served.Store(n)
	m.saved = n
	if m.card, err = testCard(); err != nil {
		return fmt.Errorf("default image: %w", err)
	}
	d.Echo.GET(Path, m.get, d.Auth.Bearer(Scope))
	return nil
}

// Validate refuses a configured path that exists but cannot be served: a
// directory, or a file camd may not read. A path that does not exist yet is
// accepted, with a warning: the pipeline may start after camd, and the
// owner's admin page must not wait for it. Until the file appears the route
// answers 503 busy.
func (m *Module) Validate() error {
	if m.file == "" {
		return nil
	}
	f, err := os.Open(m.file)
	if errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("snapshot file does not exist yet; "+Path+" answers 503 until it does", "file", m.file)
		return nil
	}
	if err != nil {
		return fmt.Errorf("--%s: %w", FileFlag, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("--%s: %w", FileFlag, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("--%s: %s is not a regular file", FileFlag, m.file)
	}
	return nil
}

// Run writes a changed count every FlushInterval, and once more when ctx
// ends at stop.
func (m *Module) Run(ctx context.Context) {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.flushLogged()
			return
		case <-t.C:
			m.flushLogged()
		}
	}
}

// Cleanup writes the count if Run has not: an App that was provisioned but
// never served (app.App.Close), or a start that failed after Provision. The
// module holds no open file between requests.
func (m *Module) Cleanup() error { return m.flush() }

// Report shows the count and the source on the admin page, followed by
// when the last snapshot was served.
func (m *Module) Report() app.Report {
	r := app.Report{ID: "snapshots", Title: "Snapshots"}
	r.Text = "None served yet"
	if n := m.served.Load(); n > 0 {
		r.Text = fmt.Sprintf("%d served", n)
	}
	// Since this start only: the count outlives a restart, the time not.
	if last := m.last.Load(); last != 0 {
		r.At = time.Unix(0, last)
	}
	// The owner sees where the stills come from; clients never do.
	if m.file == "" {
		r.Text += " (generated test card)"
	} else {
		r.Text += " from " + m.file
	}
	return r
}

// Served is the number of snapshots served, counting those not yet flushed.
func (m *Module) Served() uint64 { return m.served.Load() }

func (m *Module) get(c echo.Context) error {
	h := c.Response().Header()
	// A still is stale at once; no cache, shared or private, keeps it.
	h.Set(echo.HeaderCacheControl, "no-store")
	if m.file == "" {
		m.count()
		return c.Blob(http.StatusOK, "image/jpeg", m.card)
	}
	f, size, err := m.open()
	if e, ok := apierr.As(err); ok && e.Code == apierr.Busy {
		h.Set(echo.HeaderRetryAfter, "1")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h.Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
	m.count()
	// Streamed, not read whole: a cam has a few megabytes to spare. The
	// open descriptor keeps the inode, so a rename over the file mid-copy
	// does not tear this answer.
	return c.Stream(http.StatusOK, "image/jpeg", io.LimitReader(f, size))
}

// open opens the pipeline's file. A missing or empty one is 503 busy with
// Retry-After: the pipeline has not written a still yet, and a client tries
// again in a second. Anything else (permissions, an I/O error, a directory)
// is a fault on the cam: 500 internal, which the host logs with the cause.
// Neither message names the path.
func (m *Module) open() (*os.File, int64, error) {
	f, err := os.Open(m.file)
	if errors.Is(err, fs.ErrNotExist) {
		if !m.missing.Swap(true) {
			m.log.Warn("snapshot file missing; answering 503 until it is back", "file", m.file)
		}
		return nil, 0, m.notYet()
	}
	if err != nil {
		return nil, 0, apierr.Wrap(apierr.Internal, "cannot read the snapshot", err)
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		err = apierr.Wrap(apierr.Internal, "cannot read the snapshot", err)
	case !st.Mode().IsRegular():
		err = apierr.Wrap(apierr.Internal, "cannot read the snapshot", fmt.Errorf("%s is not a regular file", m.file))
	case st.Size() == 0:
		err = m.notYet()
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if m.missing.Swap(false) {
		m.log.Info("snapshot file is back", "file", m.file)
	}
	return f, st.Size(), nil
}

func (m *Module) notYet() error {
	return apierr.New(apierr.Busy, "no snapshot yet; retry after Retry-After")
}

func (m *Module) count() {
	m.served.Add(1)
	m.last.Store(m.clock.Now().UnixNano())
}

// state is StateFile's content.
type state struct {
	Served uint64 `json:"served"`
}

// damagedError is a count file that is not StateFile's JSON.
type damagedError struct{ err error }

func (e *damagedError) Error() string { return e.err.Error() }
func (e *damagedError) Unwrap() error { return e.err }

// load reads the count; a missing file is zero.
func load(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, &damagedError{fmt.Errorf("%s: %w", path, err)}
	}
	return s.Served, nil
}

// flush writes the count when it changed since the last write, atomically:
// a power cut leaves the old count or the new one.
func (m *Module) flush() error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	n := m.served.Load()
	if n == m.saved {
		return nil
	}
	b, _ := json.Marshal(state{Served: n}) // a struct of one integer cannot fail
	if err := atomicfile.WriteFile(m.state, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("snapshot count: %w", err)
	}
	m.saved = n
	return nil
}

// flushLogged is flush for Run, which has no one to return an error to.
func (m *Module) flushLogged() {
	if err := m.flush(); err != nil {
		m.log.Error("could not save the snapshot count", "err", err)
	}
}
