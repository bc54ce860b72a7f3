package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"camd/internal/camdtest"
)

// imageBudget is the container image's size goal.
const imageBudget = 10 << 20

// imagePhase runs the last phase, in full mode only: the repository's
// Dockerfile built with podman, as e2e/container_test.go builds it (a Go
// builder image assembled from this machine's toolchain, since no registry
// is reachable), and the image's size. The image is removed afterwards; the
// builder image is kept for the next build.
func (b *bench) imagePhase(ctx context.Context) error {
	what := "container image (Dockerfile, podman)"
	goal := fmt.Sprintf("≤ %d MiB", imageBudget>>20)
	notMeasured := func(why string) {
		b.rows = append(b.rows, row{what: what, figure: "not measured (" + why + ")", goal: goal, met: "n/a"})
	}
	if b.short {
		notMeasured("-short")
		return nil
	}
	if _, err := exec.LookPath("podman"); err != nil {
		notMeasured("podman not found")
		return nil
	}
	tag := fmt.Sprintf("localhost/camd:bench-%d", time.Now().UnixNano())
	began := time.Now()
	if err := camdtest.BuildImage(ctx, b.root, tag, "bench"); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		// A machine where podman cannot build (no runc, no busybox for
		// the builder image) still gets the rest of the table.
		notMeasured("the build failed, see below")
		lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
		b.notes = append(b.notes, "image build failed: "+lines[0]+" ... "+lines[len(lines)-1])
		return nil
	}
	defer camdtest.Podman(context.WithoutCancel(ctx), "rmi", "-f", tag)
	size, err := camdtest.ImageSize(ctx, tag)
	if err != nil {
		return err
	}
	b.rows = append(b.rows, row{what: what, camd: mib(size / 1024), figure: groupThousands(size) + " B",
		goal: goal, met: verdict(size <= imageBudget)})
	b.notes = append(b.notes, fmt.Sprintf("image: built in %.0f s with %s; podman image inspect's Size.",
		time.Since(began).Seconds(), camdtest.BuilderImageName))
	return nil
}
