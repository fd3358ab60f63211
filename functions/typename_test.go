package functions_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
)

// TestParseTypeName pins the general type name rules: a non-empty
// namespace and name around the last '/', no white space, no control
// characters, anything else allowed.
func TestParseTypeName(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		wantOK bool
	}{
		{"simple", "example/greet", true},
		{"statefun built-in", "io.statefun.types/long", true},
		{"protobuf type url", "type.googleapis.com/shop.Order", true},
		{"slashes in namespace", "a/b/c", true},
		{"unicode", "ns/grüße", true},
		{"punctuation", "ns:v1/a+b@c", true},
		{"empty", "", false},
		{"no slash", "greet", false},
		{"only slash", "/", false},
		{"empty namespace", "/greet", false},
		{"empty name", "example/", false},
		{"empty name after last slash", "a/b/", false},
		{"space in name", "example/gre et", false},
		{"space in namespace", "exa mple/greet", false},
		{"leading space", " example/greet", false},
		{"trailing newline", "example/greet\n", false},
		{"tab", "example/\tgreet", false},
		{"non-breaking space", "example/gre\u00a0et", false},
		{"nul", "example/gre\x00et", false},
		{"delete", "example/greet\x7f", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := functions.ParseTypeName(tt.in)
			if tt.wantOK {
				if err != nil || got != functions.TypeName(tt.in) {
					t.Errorf("ParseTypeName(%q): got %q, %v, want %q, nil", tt.in, got, err, tt.in)
				}
				return
			}
			if !errors.Is(err, functions.ErrInvalidTypeName) {
				t.Errorf("ParseTypeName(%q): got error %v, want ErrInvalidTypeName", tt.in, err)
			}
			if got != "" {
				t.Errorf("ParseTypeName(%q): got %q with the error, want \"\"", tt.in, got)
			}
		})
	}
}

// TestTypeNameParts checks that the namespace is everything before the
// last '/'.
func TestTypeNameParts(t *testing.T) {
	tests := []struct {
		in            functions.TypeName
		wantNamespace string
		wantName      string
	}{
		{"example/greet", "example", "greet"},
		{"type.googleapis.com/shop.Order", "type.googleapis.com", "shop.Order"},
		{"a/b/c", "a/b", "c"},
		{"noslash", "", "noslash"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := tt.in.Namespace(); got != tt.wantNamespace {
			t.Errorf("TypeName(%q).Namespace(): got %q, want %q", tt.in, got, tt.wantNamespace)
		}
		if got := tt.in.Name(); got != tt.wantName {
			t.Errorf("TypeName(%q).Name(): got %q, want %q", tt.in, got, tt.wantName)
		}
		if got := tt.in.String(); got != string(tt.in) {
			t.Errorf("TypeName(%q).String(): got %q, want %q", tt.in, got, tt.in)
		}
	}
}

func TestMustTypeName(t *testing.T) {
	if got := functions.MustTypeName("example/greet"); got != "example/greet" {
		t.Errorf("MustTypeName: got %q, want %q", got, "example/greet")
	}
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, functions.ErrInvalidTypeName) {
			t.Errorf("MustTypeName(\"bad\"): got panic value %v, want an error wrapping ErrInvalidTypeName", err)
		}
	}()
	functions.MustTypeName("bad")
	t.Errorf("MustTypeName(\"bad\"): got no panic, want one")
}

// TestValidateFunctionType pins the stricter rules for function types,
// whose names become Kafka topic names: [A-Za-z0-9._-] around one '/'.
func TestValidateFunctionType(t *testing.T) {
	tests := []struct {
		in     functions.TypeName
		wantOK bool
	}{
		{"example/greet", true},
		{"My-ns.v1/Func_2", true},
		{"type.googleapis.com/a.B", true},
		{"0/9", true},
		{"", false},
		{"greet", false},
		{"example/", false},
		{"/greet", false},
		{"a/b/c", false},
		{"ns/grüße", false},
		{"ns/a:b", false},
		{"ns/a+b", false},
		{"ns/a b", false},
		{"ns/a@b", false},
		{"n s/ab", false},
		{"ns/a\x00", false},
	}
	for _, tt := range tests {
		err := functions.ValidateFunctionType(tt.in)
		if tt.wantOK && err != nil {
			t.Errorf("ValidateFunctionType(%q): got %v, want nil", tt.in, err)
		}
		if !tt.wantOK && !errors.Is(err, functions.ErrInvalidTypeName) {
			t.Errorf("ValidateFunctionType(%q): got %v, want ErrInvalidTypeName", tt.in, err)
		}
	}
}

func TestAddress(t *testing.T) {
	a := functions.Address{Type: "example/greet", ID: "bob"}
	if got, want := a.String(), "example/greet/bob"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
	tests := []struct {
		name    string
		addr    functions.Address
		wantErr string // "" for valid
	}{
		{"valid", a, ""},
		{"any non-empty id", functions.Address{Type: "example/greet", ID: "a/b c\u00e9"}, ""},
		{"empty id", functions.Address{Type: "example/greet"}, "empty id"},
		{"zero", functions.Address{}, "invalid type name"},
		{"message type name", functions.Address{Type: "ns/a:b", ID: "x"}, "invalid type name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.addr.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%v): got %v, want nil", tt.addr, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate(%v): got %v, want an error containing %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}
