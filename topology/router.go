package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stateloop/stateloop/functions"
)

// JSONFieldRouter returns a [Router] for an ingress whose record values
// are JSON objects: it sends each value, unchanged, as a message of the
// ingress's ValueType to every one of targets, at the id that the value's
// field holds. field names a top-level member ("userId") or, with dots, a
// member of nested objects ("customer.id"). The id is the field's string,
// or the text of its number as written ("42", "1e3").
//
//	topology.Ingress{
//		Topic:     "add-to-cart",
//		ValueType: shop.AddToCart.Name(),
//		Router:    topology.JSONFieldRouter("userId", shop.CartType),
//	}
//
// The router returns an error, so that the runtime sends the record to the
// dead-letter topic, for a value that is not a JSON object, a field that
// is missing, null, an empty string or neither a string nor a number. A
// member named twice counts with its last value, as in encoding/json.
//
// It panics if field is empty, has an empty part ("a..b") or targets is
// empty: a router is built once, when the topology is.
func JSONFieldRouter(field string, targets ...functions.TypeName) Router {
	path := strings.Split(field, ".")
	if field == "" || len(targets) == 0 {
		panic(fmt.Sprintf("topology: JSONFieldRouter(%q, %v): want a field name and at least one target", field, targets))
	}
	for _, p := range path {
		if p == "" {
			panic(fmt.Sprintf("topology: JSONFieldRouter(%q): empty part in the field path", field))
		}
	}
	targets = append([]functions.TypeName(nil), targets...)
	return func(rec Record) ([]functions.OutgoingMessage, error) {
		id, err := jsonField(rec.Value, path)
		if err != nil {
			return nil, fmt.Errorf("route by JSON field %q: %w", field, err)
		}
		msgs := make([]functions.OutgoingMessage, len(targets))
		for i, t := range targets {
			msgs[i] = functions.OutgoingMessage{
				To:      functions.Address{Type: t, ID: id},
				Message: functions.NewMessage(rec.ValueType, rec.Value),
			}
		}
		return msgs, nil
	}
}

// jsonField returns the string or number at path in the JSON object v.
func jsonField(v []byte, path []string) (string, error) {
	raw := json.RawMessage(v)
	for i, name := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			if i == 0 {
				return "", errors.New("the record value is not a JSON object")
			}
			return "", fmt.Errorf("%q is not a JSON object", strings.Join(path[:i], "."))
		}
		next, ok := obj[name]
		if !ok {
			return "", fmt.Errorf("no field %q in the record value", strings.Join(path[:i+1], "."))
		}
		raw = next
	}
	raw = bytes.TrimSpace(raw)
	var id string
	switch {
	case len(raw) > 0 && raw[0] == '"':
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", fmt.Errorf("field value %s: %w", raw, err)
		}
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		id = string(raw) // a number as written: json.Unmarshal checked it
	default:
		return "", fmt.Errorf("field value %s: want a string or a number", raw)
	}
	if id == "" {
		return "", errors.New("the field is an empty string; a function id cannot be empty")
	}
	return id, nil
}
