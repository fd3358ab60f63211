package module

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Position locates a value in a module file.
type Position struct {
	// File is the name given to [Parse], or the path given to [ParseFile].
	File string
	// Document is the 1-based number of the YAML document ("---"
	// separated); 0 for a problem of the whole file.
	Document int
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
}

// String returns "file:line:column", leaving out what is unknown.
func (p Position) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
		if p.Column > 0 {
			s += ":" + strconv.Itoa(p.Column)
		}
	}
	return s
}

// Problem is one thing wrong (or, as a warning, one thing ignored) in a
// module file.
type Problem struct {
	Position
	// Kind is the document's kind, "" when it is unknown or the problem is
	// about the file.
	Kind Kind
	// Path is the key path of the value, like "spec.topics[0].valueType";
	// "" for a problem of a whole document or file.
	Path string
	// Message says what is wrong and what is expected.
	Message string
}

// String formats the problem as
//
//	module.yaml:14:7 (document 2, io.statefun.kafka.v1/ingress): spec.topics[0].valueType: missing; ...
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Position.String())
	switch {
	case p.Document > 0 && p.Kind != "":
		fmt.Fprintf(&b, " (document %d, %s)", p.Document, p.Kind)
	case p.Document > 0:
		fmt.Fprintf(&b, " (document %d)", p.Document)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is the error of [Parse] for a module file with problems. It lists
// every problem found, in the order they appear in the file.
type Error struct {
	File     string
	Problems []Problem
}

// Error returns one problem per line, after a first line that counts them
// when there is more than one.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "module: " + e.Problems[0].String()
	}
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("module: %s has %d problems:", e.File, len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems as they appear in the file. Problems about
// the whole file (line 0) come first; the sort is stable so problems at the
// same place keep the order they were found in.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}
