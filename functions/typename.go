package functions

import (
	"fmt"
	"strings"
	"unicode"
)

// TypeName names a function type, a message type, a state type, an ingress
// or an egress, as "namespace/name". The namespace is everything before the
// last '/', so "type.googleapis.com/shop.Order" is a valid message type name.
//
// The zero TypeName is invalid. Use [ParseTypeName] to check a name read at
// run time and [MustTypeName] for constants.
type TypeName string

// ParseTypeName checks that s has a non-empty namespace and name separated
// by a '/' and contains no white space or control characters.
//
// It returns an error wrapping [ErrInvalidTypeName] otherwise.
func ParseTypeName(s string) (TypeName, error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return "", fmt.Errorf("%w %q: want namespace/name", ErrInvalidTypeName, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return checkRunes(s)
		}
	}
	return TypeName(s), nil
}

// checkRunes is the slow path of ParseTypeName for names with white space,
// control characters or non-ASCII runes.
func checkRunes(s string) (TypeName, error) {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", fmt.Errorf("%w %q: contains white space or a control character", ErrInvalidTypeName, s)
		}
	}
	return TypeName(s), nil
}

// MustTypeName is like [ParseTypeName] but panics on an invalid name. It is
// meant for package-level declarations.
func MustTypeName(s string) TypeName {
	t, err := ParseTypeName(s)
	if err != nil {
		panic(err)
	}
	return t
}

// Namespace returns the part of t before the last '/'.
func (t TypeName) Namespace() string {
	if i := strings.LastIndexByte(string(t), '/'); i >= 0 {
		return string(t[:i])
	}
	return ""
}

// Name returns the part of t after the last '/'.
func (t TypeName) Name() string {
	return string(t[strings.LastIndexByte(string(t), '/')+1:])
}

// String returns t as written.
func (t TypeName) String() string { return string(t) }

// ValidateFunctionType checks the stricter rules for the name of a function
// type: the namespace and the name each consist of ASCII letters, digits,
// '.', '_' and '-' only, because function types become Kafka topic names.
//
// It returns an error wrapping [ErrInvalidTypeName] otherwise.
func ValidateFunctionType(t TypeName) error {
	if _, err := ParseTypeName(string(t)); err != nil {
		return err
	}
	for _, part := range []string{t.Namespace(), t.Name()} {
		for _, r := range part {
			if !isTopicRune(r) {
				return fmt.Errorf("%w %q: a function type may use only letters, digits, '.', '_' and '-' around one '/'", ErrInvalidTypeName, string(t))
			}
		}
	}
	return nil
}

func isTopicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// Address names one virtual instance of a function type. Every address
// exists: a new ID starts with empty state.
type Address struct {
	Type TypeName
	ID   string
}

// String returns "namespace/name/id".
func (a Address) String() string { return string(a.Type) + "/" + a.ID }

// Validate reports an invalid function type or an empty ID.
func (a Address) Validate() error {
	if err := ValidateFunctionType(a.Type); err != nil {
		return err
	}
	if a.ID == "" {
		return fmt.Errorf("functions: address %s has an empty id", a)
	}
	return nil
}
