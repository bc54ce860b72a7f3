package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	tests := []struct {
		name     string
		socket   func(t *testing.T) string // "" for no socket at all
		wantSent bool
		wantErr  bool
	}{
		{"no supervisor", func(*testing.T) string { return "" }, false, false},
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }, true, false},
		{"abstract", func(t *testing.T) string { return "@camd-sdnotify-test-" + t.Name() }, true, false},
		{"nobody listening", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gone") }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.socket(t)
			t.Setenv(EnvSocket, addr)
			var ln *net.UnixConn
			if tt.wantSent {
				var err error
				ln, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			sent, err := Notify(Ready)
			if sent != tt.wantSent || (err != nil) != tt.wantErr {
				t.Fatalf("Notify = %v, %v; want sent %v, error %v", sent, err, tt.wantSent, tt.wantErr)
			}
			if ln == nil {
				return
			}
			buf := make([]byte, 64)
			_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := ln.Read(buf)
			if err != nil || string(buf[:n]) != Ready {
				t.Fatalf("supervisor read %q, %v; want %q", buf[:n], err, Ready)
			}
		})
	}
}
