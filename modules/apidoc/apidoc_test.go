package apidoc

import (
	"strings"
	"testing"

	"camd/auth"
)

// TestRender: the Scope enum served lists exactly the scopes given, and the
// rest of the document is the embedded one.
func TestRender(t *testing.T) {
	tests := []struct {
		scopes []string
		want   string
	}{
		{[]string{"ack", "ack:read"}, `      enum: ["ack", "ack:read"]`},
		{[]string{"ack", "ack:read", "snapshot"}, `      enum: ["ack", "ack:read", "snapshot"]`},
		{nil, `      enum: []`},
	}
	for _, tt := range tests {
		var scopes []auth.Scope
		for _, n := range tt.scopes {
			scopes = append(scopes, auth.Scope{Name: n})
		}
		got := Render(scopes)
		start, end, ok := scopeEnum(got)
		if !ok || got[start:end] != tt.want {
			t.Errorf("Render(%v): enum line %q, want %q", tt.scopes, got[start:end], tt.want)
		}
		ds, de, _ := scopeEnum(document)
		if got[:start] != document[:ds] || got[end:] != document[de:] {
			t.Errorf("Render(%v) changed more than the enum line", tt.scopes)
		}
		if strings.Count(got, "\n") != strings.Count(document, "\n") {
			t.Errorf("Render(%v) changed the line count", tt.scopes)
		}
	}
}
