package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// distTarget is a cam build of scripts/dist.sh and its size goal.
type distTarget struct {
	name   string // dist.sh's target name
	budget int64  // bytes
	full   bool   // built in full mode only
}

// distTargets are the cams' 32-bit SoCs. mipsle is left to full mode: CI
// has just built armv7 (scripts/budgets.sh), but a mipsle build from a cold
// cache takes about 50 s on 2 cores, most of -short's minute.
var distTargets = []distTarget{
	{name: "armv7", budget: 8 << 20},
	{name: "mipsle", budget: 9 << 20, full: true},
}

// sizePhase runs phase 0: the stripped cam binaries, built by
// scripts/dist.sh itself so that the figure is the shipped file's size. It
// keeps the armv7 build for the emulated phase.
func (b *bench) sizePhase(ctx context.Context) error {
	dist := filepath.Join(b.tmp, "dist")
	var names []string
	for _, t := range distTargets {
		if !t.full || !b.short {
			names = append(names, t.name)
		}
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{"scripts/dist.sh"}, names...)...)
	cmd.Dir = b.root
	cmd.Env = append(childEnv(), "DIST_DIR="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/dist.sh %v: %v\n%s", names, err, out)
	}
	for _, t := range distTargets {
		what := fmt.Sprintf("%s binary, stripped (scripts/dist.sh %s)", t.name, t.name)
		goal := fmt.Sprintf("≤ %d MiB", t.budget>>20)
		if t.full && b.short {
			b.rows = append(b.rows, row{what: what, figure: "not measured (-short)", goal: goal, met: "n/a"})
			continue
		}
		bin := filepath.Join(dist, "camd-linux-"+t.name)
		st, err := os.Stat(bin)
		if err != nil {
			return err
		}
		b.rows = append(b.rows, row{what: what, camd: mib(st.Size() / 1024), figure: groupThousands(st.Size()) + " B",
			goal: goal, met: verdict(st.Size() <= t.budget)})
		if t.name == "armv7" {
			b.armv7Bin = bin
		}
	}
	return nil
}
