package httpapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// docExample returns the first ```json block after the line of
// docs/operations.md that contains after.
func docExample(t *testing.T, after string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), after)
	if !ok {
		t.Fatalf("docs/operations.md has no %q", after)
	}
	_, rest, ok = strings.Cut(rest, "```json\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/operations.md has no JSON example after %q", after)
	}
	return []byte(block)
}

// TestDocsShowTheStateAnswerAsServed: docs/operations.md showed the answer
// of GET /v1/state as {"id":...}, but the listener answers
// {"address":"ns/name/id","state":...} (TestGetStateShowsTheCommittedValues checks the answer);
// the documented example must decode as the answer does, with no other
// fields.
func TestDocsShowTheStateAnswerAsServed(t *testing.T) {
	var got struct {
		Address string                     `json:"address"`
		State   map[string]json.RawMessage `json:"state"`
	}
	dec := json.NewDecoder(bytes.NewReader(docExample(t, "`GET /v1/state` answers")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the documented answer of GET /v1/state: %v", err)
	}
	if strings.Count(got.Address, "/") != 2 || len(got.State) == 0 {
		t.Errorf("the documented answer of GET /v1/state: %+v, want an address namespace/name/id and state", got)
	}
}
