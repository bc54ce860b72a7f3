package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"camd/internal/camdtest"
)

// emulator runs the armv7 builds on this machine.
const emulator = "qemu-arm-static"

// emulatedPhase runs phase 6, "the cam itself": the armv7 camd that
// scripts/dist.sh built and an armv7 build of the reference, each under
// qemu-user on loopback, with the read load of phase 1 at a smaller count,
// then sequential logins on the emulated camd. Emulation runs every
// instruction many times slower than the cam's CPU would, and unevenly, so
// only ratios are reported: camd against the reference under the same
// emulator, and a login under the emulator against one on amd64.
func (b *bench) emulatedPhase(ctx context.Context) error {
	const (
		readWhat  = "armv7 under qemu: GET /api/ack req/s"
		loginWhat = "armv7 under qemu: POST /api/login ms"
	)
	qemu, err := exec.LookPath(emulator)
	if err != nil {
		b.rows = append(b.rows,
			row{what: readWhat, figure: "not measured (" + emulator + " not found)"},
			row{what: loginWhat, figure: "not measured (" + emulator + " not found)"})
		return nil
	}
	if b.armv7Bin == "" {
		return errors.New("no armv7 camd from the size phase")
	}
	// The reference is this command's own package, cross-built with the
	// flags dist.sh uses, which also reuses dist.sh's build cache.
	refBin := filepath.Join(b.tmp, "bench-armv7")
	if err := camdtest.Compile(ctx, refBin, "./bench", camdtest.BuildOptions{
		Env:   []string{"GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0"},
		Flags: []string{"-trimpath", "-ldflags", "-s -w"},
		Dir:   b.root,
	}); err != nil {
		return err
	}

	// The data directory the earlier phases made, so the token and the
	// password from phase 1 hold and no first start hashes a password
	// under emulation. Output to a file, as in phase 1.
	camdLog := b.logPath("camd-armv7")
	co := camdOptions(b.armv7Bin, b.dataDir, "127.0.0.1:0", childEnv())
	co.Wrapper = []string{qemu}
	co.Timeout, co.StopTimeout = 60*time.Second, 20*time.Second
	camd, err := start(ctx, "camd armv7", outputToFile(co, camdLog), camdLog)
	if err != nil {
		return err
	}
	defer camd.kill()
	if err := stderrIsFile(camd, camdLog); err != nil {
		return err
	}
	ro := referenceOptions(refBin, b.refKey, "127.0.0.1:0")
	ro.Wrapper = []string{qemu}
	ro.Timeout, ro.StopTimeout = 60*time.Second, 20*time.Second
	ref, err := start(ctx, "reference armv7", ro, b.logPath("reference-armv7"))
	if err != nil {
		return err
	}
	defer ref.kill()

	warm := max(b.emuRequests/5, readConns)
	if _, err := b.measureRead(ctx, camd, b.token, warm); err != nil {
		return err
	}
	if _, err := b.measureRead(ctx, ref, b.refToken, warm); err != nil {
		return err
	}
	var camdRPS, refRPS []float64
	for r := range b.emuRounds {
		for i := range 2 {
			if (i+r)%2 == 0 {
				run, err := b.measureRead(ctx, camd, b.token, b.emuRequests)
				if err != nil {
					return err
				}
				camdRPS = append(camdRPS, run.rps())
			} else {
				run, err := b.measureRead(ctx, ref, b.refToken, b.emuRequests)
				if err != nil {
					return err
				}
				refRPS = append(refRPS, run.rps())
			}
		}
	}
	if err := ref.stop(); err != nil {
		return err
	}
	ms, err := timeLogins(ctx, camd, b.password, b.emuLogins)
	if err != nil {
		return err
	}
	if err := camd.stop(); err != nil {
		return err
	}

	cRPS, rRPS, loginMs := median(camdRPS), median(refRPS), median(ms)
	b.rows = append(b.rows,
		row{what: fmt.Sprintf("%s, %d conns, median of %d", readWhat, readConns, b.emuRounds), figure: "camd/reference " + ratio(cRPS, rRPS)},
		row{what: fmt.Sprintf("%s, median of %d", loginWhat, b.emuLogins), figure: "qemu/amd64 " + ratio(loginMs, b.loginMs) + "×"},
	)
	b.notes = append(b.notes, fmt.Sprintf("armv7 under %s (emulated: absolute figures mean nothing about a cam, only the ratios do): "+
		"%d GET per round, camd %s req/s, reference %s req/s; login %s ms against %s ms on amd64.",
		emulator, b.emuRequests, num(cRPS), num(rRPS), num(loginMs), num(b.loginMs)))
	return nil
}
