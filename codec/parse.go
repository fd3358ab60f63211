package codec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseText encodes a value that people typed, by its type name, the
// reverse of [Display] for the values people type: for StateFun's
// built-in types (io.statefun.types/string, int, long, bool, float,
// double) text is parsed (42, true, 1.5; a string as it is, which must be
// UTF-8) and encoded as StateFun encodes them; for any other type name the
// bytes of text are the value as they are (JSON for a JSON type, say).
// It returns an error naming the type for text that does not parse.
func ParseText(typeName string, text []byte) ([]byte, error) {
	trimmed := strings.TrimSpace(string(text))
	var b []byte
	var err error
	switch typeName {
	case "io.statefun.types/string":
		if !utf8.Valid(text) {
			return nil, fmt.Errorf("codec: value of type %s is not valid UTF-8", typeName)
		}
		return String().Encode(string(text))
	case "io.statefun.types/bool":
		var v bool
		if v, err = strconv.ParseBool(trimmed); err == nil {
			b, err = Bool().Encode(v)
		}
	case "io.statefun.types/int":
		var v int64
		if v, err = strconv.ParseInt(trimmed, 10, 32); err == nil {
			b, err = Int32().Encode(int32(v))
		}
	case "io.statefun.types/long":
		var v int64
		if v, err = strconv.ParseInt(trimmed, 10, 64); err == nil {
			b, err = Int64().Encode(v)
		}
	case "io.statefun.types/float":
		var v float64
		if v, err = strconv.ParseFloat(trimmed, 32); err == nil {
			b, err = Float32().Encode(float32(v))
		}
	case "io.statefun.types/double":
		var v float64
		if v, err = strconv.ParseFloat(trimmed, 64); err == nil {
			b, err = Float64().Encode(v)
		}
	default:
		return text, nil
	}
	if err != nil {
		return nil, fmt.Errorf("codec: value %q is not a valid %s: %w", trimmed, typeName, err)
	}
	return b, nil
}
