package deploy_test

// Static checks of the deployment files at the root of the repository:
// docker-compose.yml, Dockerfile and .dockerignore. Nothing here needs a
// container engine; `docker compose config` runs only where the compose
// plugin is installed.

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// root is the root of the repository, relative to this package.
const root = ".."

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// ---------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]yaml.Node      `yaml:"volumes"`
}

type composeService struct {
	Image         string              `yaml:"image"`
	Hostname      string              `yaml:"hostname"`
	ContainerName string              `yaml:"container_name"`
	Build         yaml.Node           `yaml:"build"`
	Command       yaml.Node           `yaml:"command"`
	Environment   yaml.Node           `yaml:"environment"`
	Ports         []yaml.Node         `yaml:"ports"`
	Volumes       []yaml.Node         `yaml:"volumes"`
	DependsOn     yaml.Node           `yaml:"depends_on"`
	Healthcheck   *composeHealthcheck `yaml:"healthcheck"`
	Restart       string              `yaml:"restart"`
	NetworkMode   string              `yaml:"network_mode"`
}

type composeHealthcheck struct {
	Test    yaml.Node `yaml:"test"`
	Disable bool      `yaml:"disable"`
}

// topLevelKeys are the top-level keys of the Compose specification.
var topLevelKeys = []string{"version", "name", "include", "services", "networks", "volumes", "configs", "secrets", "models"}

// loadCompose parses docker-compose.yml and applies compose's variable
// interpolation with the defaults the file gives, so that what is checked
// is what `docker compose up` runs without a .env file.
func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yml"), &doc); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML: %v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("docker-compose.yml: want one YAML document holding a mapping")
	}
	top := doc.Content[0]
	for i := 0; i < len(top.Content); i += 2 {
		if k := top.Content[i].Value; !slices.Contains(topLevelKeys, k) && !strings.HasPrefix(k, "x-") {
			t.Errorf("docker-compose.yml line %d: unknown top-level key %q; the Compose specification has %v and x- extensions",
				top.Content[i].Line, k, topLevelKeys)
		}
	}
	if err := interpolateNode(top); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var cf composeFile
	if err := top.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml does not have the shape of a compose file: %v", err)
	}
	return cf
}

// interpolateNode replaces the variables in every scalar value (not in the
// keys) of the tree under n, as compose does.
func interpolateNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := interpolate(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		n.Value = v
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := interpolateNode(n.Content[i]); err != nil {
				return err
			}
		}
	default:
		for _, c := range n.Content {
			if err := interpolateNode(c); err != nil {
				return err
			}
		}
	}
	return nil
}

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)([^}]*)\}|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// interpolate resolves ${VAR:-default} and ${VAR-default} to their default
// and $$ to $. Any other variable reference is an error: the file must work
// without an environment or .env file.
func interpolate(s string) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if sub := varRef.FindStringSubmatch(m); sub[1] != "" {
			return sub[3]
		}
		if err == nil {
			err = fmt.Errorf("variable %s has no default; write ${NAME:-default}", m)
		}
		return m
	})
	return out, err
}

// words returns a sequence node's values, or a scalar's fields.
func words(n yaml.Node) []string {
	switch n.Kind {
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, c.Value)
		}
		return out
	case yaml.ScalarNode:
		return strings.Fields(n.Value)
	}
	return nil
}

// environment returns a service's environment, given as a mapping or as a
// list of NAME=value.
func environment(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			env[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			k, v, _ := strings.Cut(c.Value, "=")
			env[k] = v
		}
	default:
		t.Errorf("line %d: environment must be a mapping or a list", n.Line)
	}
	return env
}

// dependsOn maps each service a service depends on to the condition it
// waits for; the list form waits for service_started.
func dependsOn(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	deps := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.SequenceNode:
		for _, c := range n.Content {
			deps[c.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			var d struct {
				Condition string `yaml:"condition"`
			}
			if err := n.Content[i+1].Decode(&d); err != nil {
				t.Errorf("line %d: depends_on %s: %v", n.Content[i].Line, n.Content[i].Value, err)
			}
			if d.Condition == "" {
				d.Condition = "service_started"
			}
			deps[n.Content[i].Value] = d.Condition
		}
	default:
		t.Errorf("line %d: depends_on must be a list or a mapping", n.Line)
	}
	return deps
}

type portMapping struct {
	hostIP, published, target string
	line                      int
}

// parsePort reads a port in the short syntax [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]
// or the long syntax (target, published, host_ip).
func parsePort(t *testing.T, n yaml.Node) portMapping {
	t.Helper()
	p := portMapping{line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		s, _, _ := strings.Cut(n.Value, "/")
		parts := strings.Split(s, ":")
		if len(parts) > 3 {
			// an IPv6 host address such as [::1]:9092:9092
			i := strings.LastIndex(s, "]")
			if i < 0 {
				t.Errorf("line %d: port %q: cannot parse", n.Line, n.Value)
				return p
			}
			p.hostIP = strings.Trim(s[:i+1], "[]")
			parts = append([]string{p.hostIP}, strings.Split(strings.TrimPrefix(s[i+1:], ":"), ":")...)
		}
		switch len(parts) {
		case 1:
			p.target = parts[0]
		case 2:
			p.published, p.target = parts[0], parts[1]
		case 3:
			p.hostIP, p.published, p.target = parts[0], parts[1], parts[2]
		}
	case yaml.MappingNode:
		var long struct {
			Target    string `yaml:"target"`
			Published string `yaml:"published"`
			HostIP    string `yaml:"host_ip"`
		}
		if err := n.Decode(&long); err != nil {
			t.Errorf("line %d: port: %v", n.Line, err)
		}
		p.hostIP, p.published, p.target = long.HostIP, long.Published, long.Target
	default:
		t.Errorf("line %d: a port must be a string or a mapping", n.Line)
	}
	return p
}

type volumeMount struct {
	typ, source, target string // typ: volume (source "" for an anonymous one) or bind
	line                int
}

// parseVolume reads a service's volume in the short syntax
// [SOURCE:]TARGET[:MODE] or the long syntax (type, source, target).
func parseVolume(t *testing.T, n yaml.Node) volumeMount {
	t.Helper()
	v := volumeMount{typ: "volume", line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		parts := strings.Split(n.Value, ":")
		switch len(parts) {
		case 1:
			v.target = parts[0]
		case 2, 3:
			v.source, v.target = parts[0], parts[1]
		default:
			t.Errorf("line %d: volume %q: cannot parse", n.Line, n.Value)
		}
		if strings.HasPrefix(v.source, "/") || strings.HasPrefix(v.source, ".") || strings.HasPrefix(v.source, "~") {
			v.typ = "bind"
		}
	case yaml.MappingNode:
		var long struct {
			Type   string `yaml:"type"`
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		}
		if err := n.Decode(&long); err != nil {
			t.Errorf("line %d: volume: %v", n.Line, err)
		}
		v.typ, v.source, v.target = long.Type, long.Source, long.Target
	default:
		t.Errorf("line %d: a volume must be a string or a mapping", n.Line)
	}
	return v
}

// listeners parses a Kafka listener list NAME://HOST:PORT,... into a map
// from listener name to HOST:PORT.
func listeners(t *testing.T, setting, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok || name == "" {
			t.Errorf("kafka %s: %q is not NAME://HOST:PORT", setting, l)
			continue
		}
		out[name] = addr
	}
	return out
}

func port(hostPort string) string {
	i := strings.LastIndex(hostPort, ":")
	return hostPort[i+1:]
}

// flagValue returns the value of --name in args (as --name V or --name=V).
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestComposeFile(t *testing.T) {
	cf := loadCompose(t)
	for _, name := range []string{"kafka", "stateloop"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q (services: %v)", name, keys(cf.Services))
		}
	}
	kafka, sl := cf.Services["kafka"], cf.Services["stateloop"]
	kenv := environment(t, kafka.Environment)

	t.Run("kafka image", func(t *testing.T) {
		repo, tag, _ := strings.Cut(kafka.Image, ":")
		if repo != "apache/kafka" && repo != "docker.io/apache/kafka" {
			t.Errorf("kafka: image %q, want the official apache/kafka image", kafka.Image)
		}
		major, _, _ := strings.Cut(tag, ".")
		if n, err := strconv.Atoi(major); err != nil || n < 3 {
			t.Errorf("kafka: image tag %q, want a pinned version 3.x or later (KRaft), e.g. apache/kafka:3.9.1", tag)
		}
	})

	t.Run("kafka KRaft", func(t *testing.T) {
		roles := strings.Split(kenv["KAFKA_PROCESS_ROLES"], ",")
		for i := range roles {
			roles[i] = strings.TrimSpace(roles[i])
		}
		slices.Sort(roles)
		if !slices.Equal(roles, []string{"broker", "controller"}) {
			t.Errorf("kafka: KAFKA_PROCESS_ROLES = %q, want broker,controller (a single KRaft node)", kenv["KAFKA_PROCESS_ROLES"])
		}
		id := kenv["KAFKA_NODE_ID"]
		if _, err := strconv.Atoi(id); err != nil {
			t.Errorf("kafka: KAFKA_NODE_ID = %q, want a number", id)
		}
		ls := listeners(t, "KAFKA_LISTENERS", kenv["KAFKA_LISTENERS"])
		ctrl := kenv["KAFKA_CONTROLLER_LISTENER_NAMES"]
		ctrlAddr, ok := ls[ctrl]
		if !ok {
			t.Errorf("kafka: KAFKA_CONTROLLER_LISTENER_NAMES = %q, not a listener of KAFKA_LISTENERS %q", ctrl, kenv["KAFKA_LISTENERS"])
		}
		voter := id + "@"
		if !strings.HasPrefix(kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], voter) || !strings.HasSuffix(kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], ":"+port(ctrlAddr)) {
			t.Errorf("kafka: KAFKA_CONTROLLER_QUORUM_VOTERS = %q, want this node, %sHOST:%s (the controller listener)",
				kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], voter, port(ctrlAddr))
		}
		protocols := map[string]bool{}
		for _, p := range strings.Split(kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), ":")
			protocols[name] = true
		}
		for name := range ls {
			if !protocols[name] && !slices.Contains([]string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}, name) {
				t.Errorf("kafka: listener %s has no protocol in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP %q", name, kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])
			}
		}
		if ib := kenv["KAFKA_INTER_BROKER_LISTENER_NAME"]; ib != "" {
			if _, ok := ls[ib]; !ok {
				t.Errorf("kafka: KAFKA_INTER_BROKER_LISTENER_NAME = %q, not a listener", ib)
			}
		}
		for name := range listeners(t, "KAFKA_ADVERTISED_LISTENERS", kenv["KAFKA_ADVERTISED_LISTENERS"]) {
			if _, ok := ls[name]; !ok {
				t.Errorf("kafka: advertised listener %s is not in KAFKA_LISTENERS", name)
			}
			if name == ctrl {
				t.Errorf("kafka: the controller listener %s must not be advertised", name)
			}
		}
	})

	t.Run("kafka single-node transactions", func(t *testing.T) {
		// stateloop commits everything in Kafka transactions: with the
		// defaults (3 replicas) a single node cannot create the
		// transaction state log and every transaction fails.
		for k, want := range map[string]string{
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
		} {
			if got, ok := kenv[k]; !ok || got != want {
				t.Errorf("kafka: %s = %q (set: %v), want %q", k, got, ok, want)
			}
		}
	})

	t.Run("kafka healthcheck", func(t *testing.T) {
		if kafka.Healthcheck == nil || kafka.Healthcheck.Disable {
			t.Fatal("kafka: no healthcheck; stateloop waits for kafka to be healthy")
		}
		test := words(kafka.Healthcheck.Test)
		if len(test) > 0 && test[0] == "CMD-SHELL" {
			test = strings.Fields(strings.Join(test[1:], " "))
		}
		joined := strings.Join(test, " ")
		if !strings.Contains(joined, "kafka-broker-api-versions.sh") && !strings.Contains(joined, "kafka-topics.sh") {
			t.Errorf("kafka: healthcheck %q, want kafka-broker-api-versions.sh or kafka-topics.sh against the broker", joined)
		}
		bootstrap, ok := flagValue(test, "--bootstrap-server")
		if !ok {
			t.Fatalf("kafka: healthcheck %q has no --bootstrap-server", joined)
		}
		ls := listeners(t, "KAFKA_LISTENERS", kenv["KAFKA_LISTENERS"])
		found := false
		for name, addr := range ls {
			found = found || (port(addr) == port(bootstrap) && name != kenv["KAFKA_CONTROLLER_LISTENER_NAMES"])
		}
		if !found {
			t.Errorf("kafka: healthcheck --bootstrap-server %s: no broker listener on port %s in %q", bootstrap, port(bootstrap), kenv["KAFKA_LISTENERS"])
		}
	})

	t.Run("kafka data volume", func(t *testing.T) {
		dir := kenv["KAFKA_LOG_DIRS"]
		if dir == "" {
			t.Fatal("kafka: KAFKA_LOG_DIRS is not set; the image's default (/tmp/kraft-combined-logs) is not on a volume")
		}
		for _, n := range kafka.Volumes {
			if v := parseVolume(t, n); v.target == dir && v.typ == "volume" && v.source != "" {
				return
			}
		}
		t.Errorf("kafka: no named volume on KAFKA_LOG_DIRS %s: the broker would lose its data with its container", dir)
	})

	t.Run("published ports bind 127.0.0.1", func(t *testing.T) {
		for _, name := range keys(cf.Services) {
			for _, n := range cf.Services[name].Ports {
				p := parsePort(t, n)
				if p.hostIP != "127.0.0.1" {
					t.Errorf("%s: line %d: port %s is published on %q, want 127.0.0.1 only (host_ip or 127.0.0.1:PUBLISHED:TARGET)",
						name, p.line, n.Value, p.hostIP)
				}
				if p.published == "" {
					t.Errorf("%s: line %d: port %s has no fixed published port", name, p.line, n.Value)
				}
			}
			if cf.Services[name].NetworkMode == "host" {
				t.Errorf("%s: network_mode host publishes every port on every address", name)
			}
		}
	})

	t.Run("kafka reachable from the host", func(t *testing.T) {
		ls := listeners(t, "KAFKA_LISTENERS", kenv["KAFKA_LISTENERS"])
		adv := listeners(t, "KAFKA_ADVERTISED_LISTENERS", kenv["KAFKA_ADVERTISED_LISTENERS"])
		if len(kafka.Ports) == 0 {
			t.Fatal("kafka: no published port; clients on the host cannot reach it")
		}
		for _, n := range kafka.Ports {
			p := parsePort(t, n)
			var name string
			for l, addr := range ls {
				if port(addr) == p.target {
					name = l
				}
			}
			if name == "" {
				t.Errorf("kafka: published port %s -> %s: no listener on port %s in %q", p.published, p.target, p.target, kenv["KAFKA_LISTENERS"])
				continue
			}
			if want := p.hostIP + ":" + p.published; adv[name] != want {
				t.Errorf("kafka: listener %s is published on %s but advertised as %q; clients on the host would be sent to an address they cannot reach", name, want, adv[name])
			}
		}
	})

	t.Run("stateloop build", func(t *testing.T) {
		dir, dockerfile := ".", "Dockerfile"
		switch sl.Build.Kind {
		case yaml.ScalarNode:
			dir = sl.Build.Value
		case yaml.MappingNode:
			var b struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			}
			if err := sl.Build.Decode(&b); err != nil {
				t.Fatalf("stateloop: build: %v", err)
			}
			if b.Context != "" {
				dir = b.Context
			}
			if b.Dockerfile != "" {
				dockerfile = b.Dockerfile
			}
		default:
			t.Fatal("stateloop: no build; it must be built from the repository's Dockerfile")
		}
		if filepath.Clean(dir) != "." || filepath.Clean(dockerfile) != "Dockerfile" {
			t.Errorf("stateloop: builds %s in context %s, want the repository's Dockerfile in context .", dockerfile, dir)
		}
	})

	t.Run("stateloop command", func(t *testing.T) {
		cmd := words(sl.Command)
		if len(cmd) < 2 || cmd[0] != "run" || cmd[1] != "greeter" {
			t.Errorf("stateloop: command %q, want run greeter ...", cmd)
		}
		brokers, ok := flagValue(cmd, "--brokers")
		if !ok || brokers != "kafka:9092" {
			t.Errorf("stateloop: command %q, want --brokers kafka:9092", cmd)
		}
		adv := listeners(t, "KAFKA_ADVERTISED_LISTENERS", kenv["KAFKA_ADVERTISED_LISTENERS"])
		advertised := false
		for _, a := range adv {
			advertised = advertised || a == brokers
		}
		if !advertised {
			t.Errorf("stateloop: --brokers %s is not an advertised listener of kafka (%q)", brokers, kenv["KAFKA_ADVERTISED_LISTENERS"])
		}
		if env, ok := environment(t, sl.Environment)["STATELOOP_BROKERS"]; ok && env != brokers {
			t.Errorf("stateloop: STATELOOP_BROKERS = %q but --brokers %s", env, brokers)
		}
		if _, ok := flagValue(cmd, "--data-dir"); !ok {
			t.Errorf("stateloop: command %q has no --data-dir: the state stores would be in memory and rebuilt on every start", cmd)
		}
	})

	t.Run("stateloop waits for kafka", func(t *testing.T) {
		if c := dependsOn(t, sl.DependsOn)["kafka"]; c != "service_healthy" {
			t.Errorf("stateloop: depends_on kafka with condition %q, want service_healthy", c)
		}
		if sl.Restart != "unless-stopped" && sl.Restart != "always" {
			t.Errorf("stateloop: restart %q, want unless-stopped", sl.Restart)
		}
	})

	t.Run("stateloop scales", func(t *testing.T) {
		// docker compose up --scale stateloop=N: a fixed container name or
		// host port allows only one container, and instances that share a
		// data directory share its instance id (and so fence each other).
		if sl.ContainerName != "" {
			t.Errorf("stateloop: container_name %q allows only one container; --scale needs none", sl.ContainerName)
		}
		if len(sl.Ports) > 0 {
			t.Error("stateloop: published ports allow only one container; --scale needs none")
		}
		dataDir, _ := flagValue(words(sl.Command), "--data-dir")
		for _, n := range sl.Volumes {
			if v := parseVolume(t, n); v.target == dataDir && v.source != "" {
				t.Errorf("stateloop: line %d: %s %s on the data directory %s is shared by every instance under --scale, "+
					"and instances must not share one (the instance id and the stores are in it); use an anonymous volume (- %s)",
					v.line, v.typ, v.source, dataDir, dataDir)
			}
		}
	})

	t.Run("volumes declared", func(t *testing.T) {
		used := map[string]bool{}
		for _, name := range keys(cf.Services) {
			for _, n := range cf.Services[name].Volumes {
				v := parseVolume(t, n)
				if v.target == "" || !strings.HasPrefix(v.target, "/") {
					t.Errorf("%s: line %d: volume target %q is not an absolute path", name, v.line, v.target)
				}
				if v.typ != "volume" || v.source == "" {
					continue
				}
				used[v.source] = true
				if _, ok := cf.Volumes[v.source]; !ok {
					t.Errorf("%s: line %d: volume %q is not declared under the top-level volumes (declared: %v)", name, v.line, v.source, keys(cf.Volumes))
				}
			}
		}
		for _, name := range keys(cf.Volumes) {
			if !used[name] {
				t.Errorf("volume %q is declared but no service uses it", name)
			}
		}
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ---------------------------------------------------------------------------
// Dockerfile

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

	// The compose file runs the image with its own command: its data
	// directory must be the image's volume too.
	sl := loadCompose(t).Services["stateloop"]
	dataDir, _ := flagValue(words(sl.Command), "--data-dir")
	if dataDir != "" && !slices.Contains(facts.volumes, dataDir) {
		t.Errorf("docker-compose.yml: stateloop --data-dir %s is not a VOLUME of the Dockerfile (%q)", dataDir, facts.volumes)
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

// ---------------------------------------------------------------------------
// The binary

// TestBinaryBuildsStatic builds ./cmd/stateloop as the Dockerfile does and
// checks that the result is static (it runs on distroless/static, which has
// no libc) and accepts the commands and flags that the Dockerfile and the
// compose file give it.
func TestBinaryBuildsStatic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stateloop")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/stateloop")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build -trimpath ./cmd/stateloop: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the binary is not an ELF file: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): it is not static and would not start on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links shared libraries %q", libs)
	}

	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("stateloop %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	if out := run("version"); !strings.HasPrefix(out, "stateloop ") {
		t.Errorf("stateloop version: %q", out)
	}

	// every flag of the image's CMD and of the compose command exists
	sl := loadCompose(t).Services["stateloop"]
	for _, args := range [][]string{checkDockerfile(t).cmd, words(sl.Command)} {
		if len(args) < 2 || args[0] != "run" {
			t.Errorf("command %q: want run APP ...", args)
			continue
		}
		help := run(args[0], "--help")
		if !strings.Contains(help, "\n  "+args[1]+" ") {
			t.Errorf("command %q: %s is not a built-in application of stateloop run:\n%s", args, args[1], help)
		}
		for _, a := range args[2:] {
			if name, _, _ := strings.Cut(a, "="); strings.HasPrefix(name, "--") && !strings.Contains(help, " "+name+" ") {
				t.Errorf("command %q: stateloop run has no flag %s", args, name)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// docker compose config

// TestComposeConfig runs `docker compose config -q`, which validates the
// file against the Compose specification without an engine, where the
// compose plugin is installed; elsewhere it only says that it did not.
func TestComposeConfig(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Log("docker is not installed: docker compose config not run (the other tests check the file statically)")
		return
	}
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		t.Logf("docker compose is not available (%v: %s): docker compose config not run (the other tests check the file statically)",
			err, strings.TrimSpace(string(out)))
		return
	}
	cmd := exec.Command("docker", "compose", "-f", "docker-compose.yml", "config", "-q")
	cmd.Dir = root
	// the checks above assume the defaults of ${VAR:-default}
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "KAFKA_HOST_PORT=") })
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker compose -f docker-compose.yml config -q: %v\n%s", err, out)
	}
	t.Log("docker compose -f docker-compose.yml config -q: valid")
}
