package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"camd/platform/sdnotify"
)

// The reference server is the floor camd is compared with: bare net/http
// and golang-jwt doing the same token check as camd and answering GET
// /api/ack with the same JSON shape from memory, with no framework, no
// middleware chain, no access log and no disk. It runs in its own process
// (this binary, re-executed with -reference) so that its CPU time and memory
// are measured through /proc exactly like camd's, and so that the load
// generator's own work never counts against either.

// Token claims both servers require.
const (
	issuer   = "camd"
	audience = "camd-api"
)

// ackBody has the field order and names of camd's GET /api/ack answer.
type ackBody struct {
	User    string `json:"user"`
	Count   uint64 `json:"count"`
	AckedAt string `json:"acked_at"`
}

// runReference serves until SIGINT or SIGTERM. It signals readiness as camd
// does (READY=1 with STATUS=listening on ADDR on $NOTIFY_SOCKET), so that
// the bench starts both the same way.
func runReference(addr, keyHex string) error {
	key, err := hex.DecodeString(keyHex)
	if err != nil || len(key) < 32 {
		return fmt.Errorf("reference: -key must be at least 32 bytes in hex")
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithIssuedAt(),
	)
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	// The one ack, as camd holds its last ack in memory for GET.
	last := ackBody{User: "owner", Count: 1, AckedAt: time.Now().UTC().Format(time.RFC3339Nano)}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /api/ack", func(w http.ResponseWriter, r *http.Request) {
		scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var claims jwt.RegisteredClaims
		if _, err := parser.ParseWithClaims(raw, &claims, keyFunc); err != nil || claims.Subject == "" {
			http.Error(w, `{"error":"invalid token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(last) // as Echo's c.JSON does
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if _, err := sdnotify.Notify(sdnotify.Ready + "\nSTATUS=listening on " + ln.Addr().String()); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("reference: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// resign returns a token with the claims of tok (a token camd issued) signed
// with key instead of camd's secret. The reference then checks a token of the
// same claims and the same length as camd does: same sub, iss, aud, iat, exp
// and pwv, same bytes to decode and hash.
func resign(tok string, key []byte) (string, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return "", fmt.Errorf("read camd's token: %w", err)
	}
	for _, c := range []string{"sub", "iss", "aud", "iat", "exp"} {
		if _, ok := claims[c]; !ok {
			return "", fmt.Errorf("camd's token has no %q claim", c)
		}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}
