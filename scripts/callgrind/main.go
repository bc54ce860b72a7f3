// Command callgrind counts the instructions camd spends on one
// authenticated GET /api/ack, against the bench's bare net/http reference,
// and says where the difference goes, function by function:
//
//	go run ./scripts/callgrind [-n 3000] [-top 40] [-off log,headers,...]
//
// Instruction counts, unlike CPU time, do not move with the machine's other
// work, so two builds can be compared on a busy machine. Both servers are
// built as the bench builds them, with symbols (scripts/dist.sh amd64 with
// DIST_SYMBOLS=1; the reference static), and run under valgrind's callgrind
// on 127.0.0.1 with Go's asynchronous preemption off (its signals upset
// callgrind). Counting starts after 200 warm-up requests and stops after n
// more over 32 connections; the figure is everything the process did in
// between (GC and scheduler included) divided by n. It needs valgrind and
// takes about a minute. Kernel time is not counted: see docs/performance.md.
//
// -off builds camd with the camdprofile tag and switches the named features
// off (internal/profiling), to measure what each costs: compare with
// -off none, the same build with nothing off.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"camd/internal/camdtest"
	"camd/internal/profiling"
)

func main() {
	n := flag.Int("n", 3000, "requests counted per server")
	top := flag.Int("top", 40, "functions listed, by instructions camd spends beyond the reference")
	off := flag.String("off", "", "camd features to switch off, comma-separated: "+strings.Join(features, ", ")+
		`; "none" builds the same profiling binary with nothing off, the baseline to compare with`)
	flag.Parse()
	for _, f := range strings.Split(*off, ",") {
		if f != "" && f != "none" && !slices.Contains(features, f) {
			fmt.Fprintf(os.Stderr, "callgrind: -off: unknown feature %q (known: %s)\n", f, strings.Join(features, ", "))
			os.Exit(2)
		}
	}
	if err := run(*n, *top, *off); err != nil {
		fmt.Fprintln(os.Stderr, "callgrind:", err)
		os.Exit(1)
	}
}

// features are internal/profiling's switches.
var features = []string{profiling.AccessLog, profiling.RequestID, profiling.Headers,
	profiling.Timeouts, profiling.ConnCaps, profiling.PasswordChange}

func run(n, top int, off string) error {
	for _, tool := range []string{"valgrind", "callgrind_control", "callgrind_annotate"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install valgrind)", tool)
		}
	}
	tmp, err := os.MkdirTemp("", "camd-callgrind-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	dist := exec.Command("bash", "scripts/dist.sh", "amd64")
	dist.Env = append(os.Environ(), "DIST_DIR="+tmp, "DIST_SYMBOLS=1")
	if off != "" {
		dist.Env = append(dist.Env, "DIST_TAGS=camdprofile")
	}
	if out, err := dist.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/dist.sh amd64: %v\n%s", err, out)
	}
	camdBin, refBin := filepath.Join(tmp, "camd-linux-amd64"), filepath.Join(tmp, "reference")
	if err := camdtest.Compile(ctx, refBin, "./bench", camdtest.BuildOptions{
		Env: []string{"CGO_ENABLED=0"}, Flags: []string{"-trimpath"},
	}); err != nil {
		return err
	}

	// A first, native start makes the data directory, the owner token and
	// the ack that GET answers, so nothing is hashed under callgrind.
	dataDir := filepath.Join(tmp, "data")
	first, err := camdtest.Launch(camdtest.Options{Bin: camdBin, Dir: dataDir})
	if err != nil {
		return err
	}
	token, err := prepare(first)
	first.Stop()
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	refToken, err := resign(token, key)
	if err != nil {
		return err
	}

	grind := func(name string) []string {
		return []string{"valgrind", "--tool=callgrind", "--dump-instr=no",
			"--callgrind-out-file=" + filepath.Join(tmp, name+".%p.out")}
	}
	env := []string{"GODEBUG=asyncpreemptoff=1"}
	camd, err := count(n, filepath.Join(tmp, "camd"), camdtest.Options{
		Bin: camdBin, Dir: dataDir, Wrapper: grind("camd"), Env: append(env, "CAMD_PROFILE_OFF="+off), Timeout: 2 * time.Minute, StopTimeout: time.Minute,
	}, token)
	if err != nil {
		return fmt.Errorf("camd: %w", err)
	}
	ref, err := count(n, filepath.Join(tmp, "reference"), camdtest.Options{
		Bin: refBin, Wrapper: grind("reference"), Env: env, Timeout: 2 * time.Minute, StopTimeout: time.Minute,
		Args: []string{"-reference", "-addr", "127.0.0.1:0", "-key", hex.EncodeToString(key)},
	}, refToken)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}

	ct, rt := camd.total/float64(n), ref.total/float64(n)
	fmt.Printf("instructions per GET /api/ack (%d requests, 32 connections, user space only)\n", n)
	switch off {
	case "":
	case "none":
		fmt.Println("camd built with camdprofile, nothing switched off")
	default:
		fmt.Printf("camd built with camdprofile, %s switched off\n", off)
	}
	fmt.Printf("  camd       %8.0f\n  reference  %8.0f\n  ratio      %8.3f\n\n", ct, rt, ct/rt)
	fmt.Printf("%9s %9s %9s  function (instructions per request; camd's extra first)\n", "camd", "reference", "extra")
	names := make([]string, 0, len(camd.byFunc))
	for f := range camd.byFunc {
		names = append(names, f)
	}
	for f := range ref.byFunc {
		if _, ok := camd.byFunc[f]; !ok {
			names = append(names, f)
		}
	}
	extra := func(f string) float64 { return camd.byFunc[f] - ref.byFunc[f] }
	sort.Slice(names, func(i, j int) bool { return extra(names[i]) > extra(names[j]) })
	for _, f := range names[:min(top, len(names))] {
		fmt.Printf("%9.0f %9.0f %+9.0f  %s\n", camd.byFunc[f]/float64(n), ref.byFunc[f]/float64(n), extra(f)/float64(n), f)
	}
	return nil
}

// prepare logs in as the owner and records one ack.
func prepare(p *camdtest.Proc) (string, error) {
	if err := p.WaitReady(context.Background()); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"user": "owner", "pass": p.Password})
	res, err := p.Client.Post(p.URL+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	var lr struct{ Token string }
	err = json.NewDecoder(res.Body).Decode(&lr)
	res.Body.Close()
	if err != nil || lr.Token == "" {
		return "", fmt.Errorf("login: %d %v", res.StatusCode, err)
	}
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/ack", strings.NewReader(`{"count":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+lr.Token)
	res, err = p.Client.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ack: %d", res.StatusCode)
	}
	return lr.Token, nil
}

// resign signs tok's claims with key, for the reference, as the bench does.
func resign(tok string, key []byte) (string, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}

type profile struct {
	total  float64
	byFunc map[string]float64
}

// count starts a server under callgrind, zeroes its counters after a
// warm-up, sends n requests and reads the dump.
func count(n int, outPrefix string, o camdtest.Options, token string) (profile, error) {
	p, err := camdtest.Launch(o)
	if err != nil {
		return profile{}, err
	}
	defer p.Kill()
	if err := p.WaitReady(context.Background()); err != nil {
		return profile{}, err
	}
	url := p.URL + "/api/ack"
	// One transport for the warm-up and the count: the connections are
	// open before counting starts.
	tr := &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	if err := load(client, url, token, 200); err != nil {
		return profile{}, err
	}
	pid := strconv.Itoa(p.Pid())
	if out, err := exec.Command("callgrind_control", "-z", pid).CombinedOutput(); err != nil {
		return profile{}, fmt.Errorf("callgrind_control -z: %v\n%s", err, out)
	}
	if err := load(client, url, token, n); err != nil {
		return profile{}, err
	}
	if out, err := exec.Command("callgrind_control", "-d", pid).CombinedOutput(); err != nil {
		return profile{}, fmt.Errorf("callgrind_control -d: %v\n%s", err, out)
	}
	dumps, _ := filepath.Glob(outPrefix + "." + pid + ".out.*")
	if len(dumps) == 0 {
		return profile{}, errors.New("callgrind wrote no dump")
	}
	sort.Strings(dumps)
	return annotate(dumps[len(dumps)-1])
}

// load sends n authenticated GETs over 32 keep-alive connections; every
// answer must be a 200.
func load(client *http.Client, url, token string, n int) error {
	var left atomic.Int64
	left.Store(int64(n))
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				res, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if b := bad.Load(); b > 0 {
		return fmt.Errorf("%d of %d requests failed", b, n)
	}
	return nil
}

var (
	costLine  = regexp.MustCompile(`^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$`)
	objSuffix = regexp.MustCompile(` \[[^\]]*\]$`)
	recursion = regexp.MustCompile(`'\d+$`) // callgrind's mark of a recursion level
)

// annotate reads a dump's exclusive cost per function.
func annotate(dump string) (profile, error) {
	out, err := exec.Command("callgrind_annotate", "--inclusive=no", "--tree=none", "--auto=no", "--threshold=100", dump).Output()
	if err != nil {
		return profile{}, fmt.Errorf("callgrind_annotate: %w", err)
	}
	return parseAnnotate(string(out))
}

// parseAnnotate reads callgrind_annotate's listing: the PROGRAM TOTALS
// line, then one "count (share%) file:function [object]" line per
// function. Functions of the same name in several files, or at several
// recursion levels, are summed.
func parseAnnotate(out string) (profile, error) {
	pr := profile{byFunc: map[string]float64{}}
	listing := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "file:function") {
			listing = true
			continue
		}
		m := costLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
		if !listing {
			if strings.Contains(m[2], "PROGRAM TOTALS") {
				pr.total = v
			}
			continue
		}
		name := objSuffix.ReplaceAllString(m[2], "")
		if i := strings.LastIndex(name, ":"); i >= 0 {
			name = name[i+1:]
		}
		pr.byFunc[recursion.ReplaceAllString(name, "")] += v
	}
	if pr.total == 0 {
		return profile{}, errors.New("callgrind_annotate printed no total")
	}
	return pr, nil
}
