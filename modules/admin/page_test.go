package admin

import (
	"net/url"
	"testing"
	"time"
)

func TestAgoText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 min ago"},
		{59*time.Minute + 59*time.Second, "59 min ago"},
		{time.Hour, "1 h ago"},
		{47 * time.Hour, "47 h ago"},
		{48 * time.Hour, "2 days ago"},
		{400 * 24 * time.Hour, "400 days ago"},
	}
	for _, tt := range tests {
		if got := agoText(tt.d); got != tt.want {
			t.Errorf("agoText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestUpText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{42*time.Second + 900*time.Millisecond, "42 s"},
		{5*time.Minute + 3*time.Second, "5 min 3 s"},
		{5*time.Hour + 12*time.Minute + 59*time.Second, "5 h 12 min"},
		{3*24*time.Hour + 4*time.Hour + 30*time.Minute, "3 d 4 h"},
	}
	for _, tt := range tests {
		if got := upText(tt.d); got != tt.want {
			t.Errorf("upText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestAt(t *testing.T) {
	if got := at(time.Time{}); got != (stamp{}) {
		t.Errorf("at(zero) = %+v, want empty", got)
	}
	// Shown in UTC whatever the zone it comes in.
	cet := time.FixedZone("CET", 3600)
	got := at(time.Date(2026, 11, 28, 21, 15, 33, 0, cet))
	if want := (stamp{Text: "2026-11-28 20:15:33 UTC", ISO: "2026-11-28T20:15:33Z"}); got != want {
		t.Errorf("at = %+v, want %+v", got, want)
	}
}

func TestIsSafe(t *testing.T) {
	for method, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true,
		"POST": false, "PUT": false, "DELETE": false, "PATCH": false, "get": false,
	} {
		if got := isSafe(method); got != want {
			t.Errorf("isSafe(%q) = %v, want %v", method, got, want)
		}
	}
}

func TestNoticeFor(t *testing.T) {
	tests := []struct {
		query, want string
	}{
		{"", ""},
		{"done=revoked&client=porch-esp32", "Revoked client porch-esp32: its token is refused from now on."},
		{"done=revoked", ""},
		{"done=revoked&client=a+b", ""},
		{"done=rotated", "Rotated the signing secret: every token issued before is refused. Log in again in the phone app, and pair each client again."},
		{"done=other", ""},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := noticeFor(q); got != tt.want {
			t.Errorf("noticeFor(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}
