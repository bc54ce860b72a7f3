package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// needTool returns the path of an external program a test needs. CI installs
// every one (.ci/run), so there a missing tool fails the test; elsewhere the
// test is skipped with the package to install.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/run must install %s", name, pkg)
		}
		t.Skipf("%s not found: apt-get install %s", name, pkg)
	}
	return path
}

// mountFAT makes a small FAT file system, as on a cam's SD card, and mounts
// it with FUSE (no kernel module needed) until the test ends.
func mountFAT(t *testing.T) string {
	t.Helper()
	mkfs := needTool(t, "mkfs.vfat", "dosfstools")
	fusefat := needTool(t, "fusefat", "fusefat")
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "card.img"), filepath.Join(dir, "sdcard")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(16 << 20)
	f.Close()
	if out, err := exec.Command(mkfs, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	if out, err := exec.Command(fusefat, "-o", "rw+", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("fusefat: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

// TestFATDataDir: a data directory on FAT, which has no hard links and no
// Unix modes, works like any other: first start, concurrent first start,
// restart with the same secret, acks that survive kill -9.
func TestFATDataDir(t *testing.T) {
	card := mountFAT(t)
	dir := filepath.Join(card, "camd")

	a, err := tryStart(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tryStart(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	password := a.Password + b.Password // exactly one of them printed it
	if len(password) < 16 || (a.Password != "" && b.Password != "") {
		t.Fatalf("initial passwords %q and %q: want exactly one", a.Password, b.Password)
	}
	tok := a.login(password)
	if r := b.do("POST", "/api/ack", `{"count":5}`, bearer(tok)); r.Status != 200 {
		t.Fatalf("token from one process refused by the other: %d %s", r.Status, r.Body)
	}
	a.stop()
	b.kill()

	p := start(t, dir)
	if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != 200 || r.field(t, "count") != float64(5) {
		t.Fatalf("after restart on FAT: %d %s", r.Status, r.Body)
	}
	key, err := os.ReadFile(filepath.Join(dir, "secret.bin"))
	if err != nil || len(key) != 32 {
		t.Errorf("secret.bin on FAT: %d bytes, %v", len(key), err)
	}
}
