package deploy_test

// Static checks of the Dockerfile and .dockerignore at the root of the
// repository.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type instruction struct {
	cmd  string // upper case
	args string
	line int
}

type stage struct {
	index int
	name  string // "" without AS
	image string
	instr []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continuation lines and dropping comments.
func parseDockerfile(t *testing.T, src string) []stage {
	t.Helper()
	var stages []stage
	var cur strings.Builder
	start := 0
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			st := stage{index: len(stages)}
			if len(f) > 0 {
				st.image = f[0]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				t.Errorf("Dockerfile line %d: FROM %s: want FROM IMAGE [AS NAME]", in.line, in.args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Errorf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
	}
	if cur.Len() > 0 {
		t.Errorf("Dockerfile: ends in a continued line")
	}
	return stages
}

// execForm parses the JSON array of an exec-form instruction.
func execForm(in instruction) ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil {
		return nil, fmt.Errorf("Dockerfile line %d: %s %s: want the exec form, a JSON array of strings (the final image has no shell): %v",
			in.line, in.cmd, in.args, err)
	}
	return args, nil
}

// copyArgs splits a COPY into its flags and paths.
func copyArgs(in instruction) (flags map[string]string, srcs []string, dest string) {
	flags = map[string]string{}
	f := strings.Fields(in.args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
		flags[k] = v
		f = f[1:]
	}
	if strings.HasPrefix(strings.Join(f, " "), "[") {
		_ = json.Unmarshal([]byte(strings.Join(f, " ")), &f)
	}
	if len(f) == 0 {
		return flags, nil, ""
	}
	return flags, f[:len(f)-1], f[len(f)-1]
}

// goVersion returns the major.minor of go.mod's go directive.
func goVersion(t *testing.T) string {
	t.Helper()
	for _, l := range strings.Split(string(readFile(t, "go.mod")), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			parts := strings.Split(strings.TrimSpace(v), ".")
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1]
			}
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

var (
	leadingVersion = regexp.MustCompile(`^(\d+)\.(\d+)`)
	cgoDisabled    = regexp.MustCompile(`\bCGO_ENABLED[= ]0\b`)
	shellSeparator = regexp.MustCompile(`&&|;|\|\|`)
)

// dockerfileFacts is what the checks of the Dockerfile found.
type dockerfileFacts struct {
	binary  string   // path of the binary in the final image
	cmd     []string // CMD
	volumes []string // VOLUME of the final stage
}

func checkDockerfile(t *testing.T) dockerfileFacts {
	t.Helper()
	var facts dockerfileFacts
	stages := parseDockerfile(t, string(readFile(t, "Dockerfile")))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a builder stage and a final stage", len(stages))
	}

	// every COPY --from names an earlier stage
	for i, st := range stages {
		for _, in := range st.instr {
			if in.cmd != "COPY" {
				continue
			}
			flags, _, _ := copyArgs(in)
			from, ok := flags["from"]
			if !ok {
				continue
			}
			found := false
			for _, prev := range stages[:i] {
				found = found || from == prev.name || from == strconv.Itoa(prev.index)
			}
			if !found {
				t.Errorf("Dockerfile line %d: COPY --from=%s: no earlier stage has that name or index", in.line, from)
			}
		}
	}

	// the builder: golang matching go.mod, modules cached, a static build
	builder := stages[0]
	repo, tag, _ := strings.Cut(builder.image, ":")
	if repo != "golang" && repo != "docker.io/library/golang" {
		t.Errorf("Dockerfile: the first stage is FROM %s, want the builder FROM golang:%s", builder.image, goVersion(t))
	} else if m := leadingVersion.FindStringSubmatch(tag); m == nil || m[1]+"."+m[2] != goVersion(t) {
		t.Errorf("Dockerfile: the builder is FROM %s, want golang:%s (the go directive of go.mod)", builder.image, goVersion(t))
	}
	if builder.name == "" {
		t.Errorf("Dockerfile: the builder stage has no name (FROM golang:... AS builder)")
	}
	cgoEnv := false
	var copyMod, download, copyAll, build int
	output := ""
	for i, in := range builder.instr {
		switch in.cmd {
		case "ENV", "ARG":
			if cgoDisabled.MatchString(in.args) {
				cgoEnv = true
			}
		case "COPY":
			_, srcs, _ := copyArgs(in)
			switch {
			case slices.Contains(srcs, "go.mod") && slices.Contains(srcs, "go.sum") && copyMod == 0:
				copyMod = i + 1
			case slices.Contains(srcs, "."):
				copyAll = i + 1
			}
		case "RUN":
			for _, c := range shellSeparator.Split(in.args, -1) {
				f := strings.Fields(c)
				j := slices.Index(f, "go")
				if j < 0 || j+1 >= len(f) {
					continue
				}
				switch f[j+1] {
				case "mod":
					if j+2 < len(f) && f[j+2] == "download" && download == 0 {
						download = i + 1
					}
				case "build":
					build = i + 1
					if !cgoEnv && !slices.Contains(f[:j], "CGO_ENABLED=0") {
						t.Errorf("Dockerfile line %d: %s: without CGO_ENABLED=0 the binary needs the libc of the builder, which the final image does not have", in.line, strings.TrimSpace(c))
					}
					if !slices.Contains(f[j:], "./cmd/stateloop") {
						t.Errorf("Dockerfile line %d: %s: does not build ./cmd/stateloop", in.line, strings.TrimSpace(c))
					}
					if o, ok := flagValue(f[j:], "-o"); ok {
						output = o
					} else {
						t.Errorf("Dockerfile line %d: %s: no -o PATH", in.line, strings.TrimSpace(c))
					}
				}
			}
		}
	}
	switch {
	case build == 0:
		t.Errorf("Dockerfile: the builder stage has no RUN ... go build")
	case copyMod == 0 || download == 0:
		t.Errorf("Dockerfile: the builder stage does not COPY go.mod go.sum and RUN go mod download (the cached module layer)")
	case !(copyMod < download && download < copyAll && copyAll < build):
		t.Errorf("Dockerfile: the builder stage must COPY go.mod go.sum, RUN go mod download, COPY . . and build, in that order (instructions %d, %d, %d, %d)",
			copyMod, download, copyAll, build)
	}

	// the final stage: the binary copied from the builder, run as non-root
	final := stages[len(stages)-1]
	if strings.HasPrefix(final.image, "golang") {
		t.Errorf("Dockerfile: the final stage is FROM %s; it should be a small image without the Go toolchain", final.image)
	}
	var entrypoint []string
	user := ""
	for _, in := range final.instr {
		var err error
		switch in.cmd {
		case "COPY":
			flags, srcs, dest := copyArgs(in)
			if flags["from"] != "" && (flags["from"] == builder.name || flags["from"] == "0") && slices.Contains(srcs, output) {
				facts.binary = dest
				if strings.HasSuffix(dest, "/") {
					facts.binary = path.Join(dest, path.Base(output))
				}
			}
		case "ENTRYPOINT":
			entrypoint, err = execForm(in)
		case "CMD":
			facts.cmd, err = execForm(in)
		case "VOLUME":
			var v []string
			if strings.HasPrefix(in.args, "[") {
				v, err = execForm(in)
			} else {
				v = strings.Fields(in.args)
			}
			facts.volumes = append(facts.volumes, v...)
		case "USER":
			user = in.args
		}
		if err != nil {
			t.Error(err)
		}
	}
	if facts.binary == "" {
		t.Errorf("Dockerfile: the final stage does not COPY --from=%s %s (the binary the builder makes)", builder.name, output)
	}
	if len(entrypoint) != 1 || entrypoint[0] != facts.binary {
		t.Errorf("Dockerfile: ENTRYPOINT %q, want [%q], the binary", entrypoint, facts.binary)
	}
	if u, _, _ := strings.Cut(user, ":"); !strings.HasSuffix(final.image, ":nonroot") && (u == "" || u == "root" || u == "0") {
		t.Errorf("Dockerfile: the final stage runs as root (USER %q); want a non-root user", user)
	}
	dataDir, ok := flagValue(facts.cmd, "--data-dir")
	if !ok {
		t.Errorf("Dockerfile: CMD %q has no --data-dir", facts.cmd)
	} else if !slices.Contains(facts.volumes, dataDir) {
		t.Errorf("Dockerfile: CMD --data-dir %s is not a VOLUME (volumes: %q)", dataDir, facts.volumes)
	}
	return facts
}

func TestDockerfile(t *testing.T) {
	facts := checkDockerfile(t)

	// The compose file runs the image with its own commands: their data
	// directory must be the image's volume too.
	cf := loadCompose(t)
	for _, name := range stateloopServices(t, cf) {
		dataDir, _ := flagValue(words(cf.Services[name].Command), "--data-dir")
		if dataDir != "" && !slices.Contains(facts.volumes, dataDir) {
			t.Errorf("docker-compose.yml: %s --data-dir %s is not a VOLUME of the Dockerfile (%q)", name, dataDir, facts.volumes)
		}
	}
}

// ---------------------------------------------------------------------------
// .dockerignore

// ignorePattern is one line of a .dockerignore.
type ignorePattern struct {
	re      *regexp.Regexp
	exclude bool // false for a !exception
}

// parseDockerignore reads .dockerignore patterns as the docker builder
// does: paths relative to the context, Go filepath.Match syntax plus **,
// and a pattern also excludes everything under a directory it matches.
func parseDockerignore(src string) []ignorePattern {
	var out []ignorePattern
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := ignorePattern{exclude: true}
		if s, ok := strings.CutPrefix(l, "!"); ok {
			p.exclude, l = false, strings.TrimSpace(s)
		}
		l = strings.TrimPrefix(path.Clean("/"+l), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(l); i++ {
			switch c := l[i]; {
			case strings.HasPrefix(l[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(l[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			case c == '[':
				j := strings.IndexByte(l[i:], ']')
				if j < 0 {
					re.WriteString(`\[`)
					continue
				}
				re.WriteString(l[i : i+j+1])
				i += j
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("(/.*)?$")
		p.re = regexp.MustCompile(re.String())
		out = append(out, p)
	}
	return out
}

// ignored reports whether the build context leaves out file (a slash
// separated path relative to the context): the last pattern that matches
// decides.
func ignored(patterns []ignorePattern, file string) bool {
	excluded := false
	for _, p := range patterns {
		if p.re.MatchString(file) {
			excluded = p.exclude
		}
	}
	return excluded
}

func TestDockerignore(t *testing.T) {
	patterns := parseDockerignore(string(readFile(t, ".dockerignore")))
	for _, f := range []string{".git/HEAD", "stateloop-data/instance-id", "cmd/stateloop/stateloop.test"} {
		if !ignored(patterns, f) {
			t.Errorf(".dockerignore: %s is sent to the builder; leave it out", f)
		}
	}

	// The build needs go.mod, go.sum and every file of every package of
	// this module that the binary is built from.
	need := []string{"go.mod", "go.sum"}
	out, err := exec.Command("go", "list", "-deps",
		"-f", `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"../cmd/stateloop").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%s is not in the repository %s", f, abs)
		}
		need = append(need, filepath.ToSlash(rel))
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %q", need)
	}
	for _, f := range need {
		if ignored(patterns, f) {
			t.Errorf(".dockerignore leaves out %s, which the Dockerfile's go build needs", f)
		}
	}
}

func TestDockerignoreMatcher(t *testing.T) {
	patterns := parseDockerignore("# comment\n.git\n*.test\n**/tmp\ndocs\n!docs/keep.md\n/bin\n")
	for f, want := range map[string]bool{
		".git/objects/ab":       true,
		"a.test":                true,
		"cmd/stateloop/x.test":  false, // *.test matches at the root only
		"tmp/x":                 true,
		"a/b/tmp":               true,
		"docs/docker.md":        true,
		"docs/keep.md":          false,
		"bin/stateloop":         true,
		"cmd/stateloop/main.go": false,
		"go.mod":                false,
	} {
		if got := ignored(patterns, f); got != want {
			t.Errorf("ignored(%s) = %v, want %v", f, got, want)
		}
	}
}
