package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"camd/auth"
	"camd/config"
)

// Module is a self-contained part of camd: it mounts its own routes and
// middleware when the host hands it its dependencies.
type Module interface {
	// Provision mounts the module's routes on d.Echo and opens what the
	// module keeps. It runs once, at start, before the server accepts
	// connections.
	Provision(d Deps) error
}

// Optional interfaces a module may implement, in the manner of Caddy's
// modules. The host calls them in registry order, Cleanup in reverse.
type (
	// Validator checks the module once every module is provisioned; an
	// error stops camd from starting.
	Validator interface{ Validate() error }
	// Runner does background work, such as flushing what the module
	// buffers, from the moment camd serves until ctx ends at stop.
	Runner interface{ Run(ctx context.Context) }
	// CleanerUpper releases what Provision opened: at stop, or when start
	// fails halfway. Then it runs on every module whose Provision was
	// called, the one whose Provision failed too, so it must cope with
	// whatever a failed Provision left half open. At stop it runs once no
	// handler is running: requests still in flight when the shutdown grace
	// ends have their connections closed (http.Server.Close) and their
	// contexts ended first, and the host waits a second more for their
	// handlers. Only a handler that ignores its context can outlast that.
	CleanerUpper interface{ Cleanup() error }
)

// ModuleInfo names a module and says what it brings.
type ModuleInfo struct {
	// ID names what the module provides, such as "auth" or "ack". IDs are
	// unique in a registry and fix the order modules are provisioned in.
	// The module's data directory is named after it.
	ID string
	// New returns a fresh, unprovisioned module.
	New func() Module
	// Scopes are the client scopes the module's routes check. The admin
	// page, camd client add and the OpenAPI document offer them.
	Scopes []auth.Scope
	// Flags are the module's own settings, handed to it as Deps.Config.
	Flags []config.Flag
	// Files are files that camd versions before module data directories
	// kept at the top of the data directory. The host moves each into the
	// module's directory when the module opens it with Deps.DataDir.
	Files []string
}

// Registry is a set of modules. Modules add themselves to DefaultRegistry
// from init(); tests build their own Registry from exactly the modules they
// name, so nothing global leaks between them.
type Registry struct {
	mu      sync.RWMutex
	modules map[string]ModuleInfo
}

// NewRegistry returns a registry of infos.
func NewRegistry(infos ...ModuleInfo) *Registry {
	r := &Registry{modules: make(map[string]ModuleInfo)}
	for _, info := range infos {
		r.Register(info)
	}
	return r
}

// DefaultRegistry holds the modules that register themselves from init();
// modules/standard imports the standard set. It is the only package-level
// state in camd.
var DefaultRegistry = NewRegistry()

// Register adds a module to DefaultRegistry. Modules call it from init().
func Register(info ModuleInfo) { DefaultRegistry.Register(info) }

// Register adds a module. Like database/sql.Register, it panics on an empty
// ID, a nil constructor, an ID, scope or flag another module has already,
// or a flag that config.Flag.Check refuses (one of camd's own, say) or the
// module declares twice: each is a programming error that must not reach a
// cam. A flag clashes by its name or by its variable.
func (r *Registry) Register(info ModuleInfo) {
	if info.ID == "" {
		panic("app: module registered without an ID")
	}
	if info.New == nil {
		panic(fmt.Sprintf("app: module %q registered without New", info.ID))
	}
	for i, f := range info.Flags {
		if err := f.Check(); err != nil {
			panic(fmt.Sprintf("app: module %q: %v", info.ID, err))
		}
		for _, o := range info.Flags[:i] {
			if c := clash(f, o); c != "" {
				panic(fmt.Sprintf("app: module %q declares %s twice", info.ID, c))
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.modules[info.ID]; dup {
		panic(fmt.Sprintf("app: module %q registered twice", info.ID))
	}
	for _, other := range r.modules {
		for _, sc := range info.Scopes {
			if slices.ContainsFunc(other.Scopes, func(o auth.Scope) bool { return o.Name == sc.Name }) {
				panic(fmt.Sprintf("app: module %q declares scope %q, which module %q has", info.ID, sc.Name, other.ID))
			}
		}
		for _, f := range info.Flags {
			for _, o := range other.Flags {
				if c := clash(f, o); c != "" {
					panic(fmt.Sprintf("app: module %q declares %s, which module %q has", info.ID, c, other.ID))
				}
			}
		}
	}
	r.modules[info.ID] = info
}

// clash says what flags a and b share that would set them as one, their
// name or their variable; "" for nothing.
func clash(a, b config.Flag) string {
	switch {
	case a.Name == b.Name:
		return "flag --" + a.Name
	case a.Env != "" && a.Env == b.Env:
		return "variable " + a.Env
	}
	return ""
}

// Modules returns the registered modules sorted by ID, so start-up is the
// same on every run.
func (r *Registry) Modules() []ModuleInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]ModuleInfo, 0, len(r.modules))
	for _, m := range r.modules {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b ModuleInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Scopes returns every scope the modules declare.
func (r *Registry) Scopes() []auth.Scope {
	var out []auth.Scope
	for _, m := range r.Modules() {
		out = append(out, m.Scopes...)
	}
	return out
}

// Flags returns every flag the modules declare, for config.Parse.
func (r *Registry) Flags() []config.Flag {
	var out []config.Flag
	for _, m := range r.Modules() {
		out = append(out, m.Flags...)
	}
	return out
}
