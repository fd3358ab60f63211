package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/stateloop/stateloop/functions"
)

// JSON bodies of the built-in types. StateFun's built-in types
// (io.statefun.types/string, int, long, bool, float, double) are protobuf
// wrapper messages on the wire. A request with Content-Type
// application/json gives a message of one of them as JSON instead (a JSON
// string, an integer, true or false, a number; a float or double may also
// be "NaN", "Infinity" or "-Infinity", as in protobuf's JSON mapping), and
// the listener encodes it; the reply to a request that accepts JSON (see
// wantsJSON) is JSON too. Messages of other types are bytes the listener
// passes on as they are, whatever the Content-Type.

const jsonMediaType = "application/json"

// builtinJSON says how a built-in type is written in JSON, for errors.
var builtinJSON = map[functions.TypeName]string{
	functions.StringType.Name(): `a JSON string, like "Alice"`,
	functions.IntType.Name():    `a JSON integer from -2147483648 to 2147483647, like 42`,
	functions.LongType.Name():   `a JSON integer from -9223372036854775808 to 9223372036854775807, like 42`,
	functions.BoolType.Name():   `true or false`,
	functions.FloatType.Name():  `a JSON number in the range of a 32-bit float, like 1.5, or "NaN", "Infinity" or "-Infinity"`,
	functions.DoubleType.Name(): `a JSON number, like 1.5, or "NaN", "Infinity" or "-Infinity"`,
}

// isJSON reports whether a Content-Type is application/json, with any
// parameters.
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), jsonMediaType)
}

// wantsJSON reports whether the reply to r is to be JSON: when its Accept
// header names application/json (without q=0), or when its body was JSON
// and Accept names no other type than wildcards (curl sends "*/*").
func wantsJSON(r *http.Request) bool {
	accept := strings.Join(r.Header.Values("Accept"), ",")
	specific := false
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt == "" || refused(params) {
			continue
		}
		if mt == jsonMediaType {
			return true
		}
		if !strings.HasSuffix(mt, "/*") {
			specific = true
		}
	}
	return !specific && isJSON(r.Header.Get("Content-Type"))
}

// refused reports whether the parameters of a media range in Accept have
// q=0.
func refused(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}

// encodeJSONBody returns the message bytes of a JSON body of a built-in
// type, and ok false for any other type (its body is the message as it
// is). The error says what was wrong and what the type wants.
func encodeJSONBody(t functions.TypeName, body []byte) (msg []byte, ok bool, err error) {
	want, ok := builtinJSON[t]
	if !ok {
		return nil, false, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("a message of type %s with Content-Type %s: %s; want %s", t, jsonMediaType, fmt.Sprintf(format, args...), want)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, true, bad("the body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, true, bad("the body is not JSON (%v)", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, true, bad("there is more after the value")
	}
	got := func() error {
		b, _ := json.Marshal(v)
		if len(b) > 40 {
			b = append(b[:40], "..."...)
		}
		return bad("got %s", b)
	}
	n, isNumber := v.(json.Number)
	switch t {
	case functions.StringType.Name():
		s, ok := v.(string)
		if !ok {
			return nil, true, got()
		}
		msg, err = functions.StringType.Codec().Encode(s)
	case functions.IntType.Name():
		x, perr := strconv.ParseInt(string(n), 10, 32)
		if !isNumber || perr != nil {
			return nil, true, got()
		}
		msg, err = functions.IntType.Codec().Encode(int32(x))
	case functions.LongType.Name():
		x, perr := strconv.ParseInt(string(n), 10, 64)
		if !isNumber || perr != nil {
			return nil, true, got()
		}
		msg, err = functions.LongType.Codec().Encode(x)
	case functions.BoolType.Name():
		b, ok := v.(bool)
		if !ok {
			return nil, true, got()
		}
		msg, err = functions.BoolType.Codec().Encode(b)
	case functions.FloatType.Name():
		x, ok := jsonFloat(v, 32)
		if !ok {
			return nil, true, got()
		}
		msg, err = functions.FloatType.Codec().Encode(float32(x))
	case functions.DoubleType.Name():
		x, ok := jsonFloat(v, 64)
		if !ok {
			return nil, true, got()
		}
		msg, err = functions.DoubleType.Codec().Encode(x)
	}
	return msg, true, err
}

// jsonFloat reads a float of the bit size from a decoded JSON number, or
// from "NaN", "Infinity" or "-Infinity"; ok is false for anything else and
// for a number out of range.
func jsonFloat(v any, bitSize int) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		x, err := strconv.ParseFloat(string(v), bitSize)
		return x, err == nil
	case string:
		switch v {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

// decodeJSONReply returns a message of a built-in type as JSON, with a
// newline, and ok false for a message of another type or one that does not
// decode (it is answered as it is).
func decodeJSONReply(m functions.Message) (body []byte, ok bool) {
	var v any
	var err error
	switch m.TypeName() {
	case functions.StringType.Name():
		v, err = functions.StringType.As(m)
	case functions.IntType.Name():
		v, err = functions.IntType.As(m)
	case functions.LongType.Name():
		v, err = functions.LongType.As(m)
	case functions.BoolType.Name():
		v, err = functions.BoolType.As(m)
	case functions.FloatType.Name():
		var x float32
		x, err = functions.FloatType.As(m)
		v = jsonSpecialFloat(float64(x), x)
	case functions.DoubleType.Name():
		var x float64
		x, err = functions.DoubleType.As(m)
		v = jsonSpecialFloat(x, x)
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// jsonSpecialFloat returns "NaN", "Infinity" or "-Infinity" for x that
// JSON has no number for, else v (the float as its own type, so that a
// float32 is written with its own shortest digits).
func jsonSpecialFloat(x float64, v any) any {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	return v
}
