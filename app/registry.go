package app

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Module is a self-contained part of camd: it mounts its own routes and
// middleware when the host hands it its dependencies.
type Module interface {
	// Provision mounts the module's routes on d.Echo. It runs once, at
	// start, before the server accepts connections.
	Provision(d Deps) error
}

// ModuleInfo names a module and says how to make an empty one.
type ModuleInfo struct {
	// ID names what the module provides, such as "auth" or "ack". IDs are
	// unique in a registry and fix the order modules are provisioned in.
	ID string
	// New returns a fresh, unprovisioned module.
	New func() Module
}

// Registry is a set of modules. Modules add themselves to DefaultRegistry
// from init(); tests build their own Registry from exactly the modules they
// name, so nothing global leaks between them.
type Registry struct {
	mu      sync.RWMutex
	modules map[string]ModuleInfo
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{modules: make(map[string]ModuleInfo)}
}

// DefaultRegistry holds the modules that register themselves from init();
// modules/standard imports the standard set. It is the only package-level
// state in camd.
var DefaultRegistry = NewRegistry()

// Register adds a module to DefaultRegistry. Modules call it from init().
func Register(info ModuleInfo) { DefaultRegistry.Register(info) }

// Register adds a module. Like database/sql.Register, it panics on an empty
// ID, a nil constructor or a duplicate ID: each is a programming error that
// must not reach a cam.
func (r *Registry) Register(info ModuleInfo) {
	if info.ID == "" {
		panic("app: module registered without an ID")
	}
	if info.New == nil {
		panic(fmt.Sprintf("app: module %q registered without New", info.ID))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.modules[info.ID]; dup {
		panic(fmt.Sprintf("app: module %q registered twice", info.ID))
	}
	r.modules[info.ID] = info
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
