package deploy_test

// Static checks of docker-compose.yml at the root of the repository (the
// Dockerfile and .dockerignore: dockerfile_test.go; the binary and the
// command lines: binary_test.go; the Python greeter: greeter_python_test.go).
// Nothing here needs a container engine; `docker compose config` runs only
// where the compose plugin is installed.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

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
	Profiles      []string            `yaml:"profiles"`
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

// envBrokers is the environment variable that gives the default of
// stateloop's --brokers (app.EnvBrokers).
const envBrokers = "STATELOOP_BROKERS"

// moduleFlag returns the module file of a stateloop command line: -f FILE,
// -f=FILE, --module FILE or --module=FILE.
func moduleFlag(args []string) (string, bool) {
	if v, ok := flagValue(args, "-f"); ok {
		return v, true
	}
	return flagValue(args, "--module")
}

// buildOf returns the build context and Dockerfile of a service, relative
// to the root of the repository; ok is false for a service without build.
func buildOf(t *testing.T, svc composeService) (dir, dockerfile string, ok bool) {
	t.Helper()
	dir, dockerfile = ".", "Dockerfile"
	switch svc.Build.Kind {
	case yaml.ScalarNode:
		dir = svc.Build.Value
	case yaml.MappingNode:
		var b struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		}
		if err := svc.Build.Decode(&b); err != nil {
			t.Fatalf("build: %v", err)
		}
		if b.Context != "" {
			dir = b.Context
		}
		if b.Dockerfile != "" {
			dockerfile = b.Dockerfile
		}
	default:
		return "", "", false
	}
	return filepath.Clean(dir), filepath.Clean(dockerfile), true
}

// stateloopServices returns the services built from the repository's
// Dockerfile, the stateloop image.
func stateloopServices(t *testing.T, cf composeFile) []string {
	t.Helper()
	var out []string
	for _, name := range keys(cf.Services) {
		if dir, dockerfile, ok := buildOf(t, cf.Services[name]); ok && dir == "." && dockerfile == "Dockerfile" {
			out = append(out, name)
		}
	}
	return out
}

// hostPath returns the file of the repository (relative to its root) that
// a service sees at path through one of its bind mounts.
func hostPath(t *testing.T, svc composeService, p string) (string, bool) {
	t.Helper()
	for _, n := range svc.Volumes {
		v := parseVolume(t, n)
		if v.typ != "bind" {
			continue
		}
		if rel, err := filepath.Rel(v.target, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Clean(filepath.Join(v.source, rel)), true
		}
	}
	return "", false
}

func TestComposeFile(t *testing.T) {
	cf := loadCompose(t)
	for _, name := range []string{"kafka", "stateloop", pythonService} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q (services: %v)", name, keys(cf.Services))
		}
	}
	kafka := cf.Services["kafka"]
	kenv := environment(t, kafka.Environment)
	stateloops := stateloopServices(t, cf)
	if !slices.Contains(stateloops, "stateloop") {
		t.Errorf("stateloop: not built from the repository's Dockerfile in context . (services built so: %v)", stateloops)
	}

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

	// Every service that runs the stateloop image: stateloop (the
	// greeter's module) and greeter-go (the Go greeter, in a profile).
	for _, name := range stateloops {
		sl := cf.Services[name]
		cmd := words(sl.Command)

		t.Run(name+" command", func(t *testing.T) {
			if len(cmd) < 2 || cmd[0] != "run" {
				t.Fatalf("%s: command %q, want run APP ... or run -f MODULE ...", name, cmd)
			}
			_, hasModule := moduleFlag(cmd)
			if !hasModule && strings.HasPrefix(cmd[1], "-") {
				t.Errorf("%s: command %q names neither an application nor a module (-f)", name, cmd)
			}
			// The Kafka address: --brokers, else STATELOOP_BROKERS (its
			// default), else the module file's (checked with the module).
			brokers, ok := flagValue(cmd, "--brokers")
			env, envOK := environment(t, sl.Environment)[envBrokers]
			switch {
			case ok && envOK && env != brokers:
				t.Errorf("%s: %s = %q but --brokers %s", name, envBrokers, env, brokers)
			case !ok && envOK:
				brokers, ok = env, true
			}
			if !ok && !hasModule {
				t.Errorf("%s: command %q has no --brokers and there is no %s: it would start an embedded broker inside its container", name, cmd, envBrokers)
			}
			if ok {
				adv := listeners(t, "KAFKA_ADVERTISED_LISTENERS", kenv["KAFKA_ADVERTISED_LISTENERS"])
				advertised := false
				for _, a := range adv {
					advertised = advertised || a == brokers
				}
				if brokers != "kafka:9092" || !advertised {
					t.Errorf("%s: brokers %s, want kafka:9092, an advertised listener of kafka (%q)", name, brokers, kenv["KAFKA_ADVERTISED_LISTENERS"])
				}
			}
			if _, ok := flagValue(cmd, "--data-dir"); !ok {
				t.Errorf("%s: command %q has no --data-dir: the state stores would be in memory and rebuilt on every start", name, cmd)
			}
		})

		t.Run(name+" waits for kafka", func(t *testing.T) {
			if c := dependsOn(t, sl.DependsOn)["kafka"]; c != "service_healthy" {
				t.Errorf("%s: depends_on kafka with condition %q, want service_healthy", name, c)
			}
			if sl.Restart != "unless-stopped" && sl.Restart != "always" {
				t.Errorf("%s: restart %q, want unless-stopped", name, sl.Restart)
			}
		})

		t.Run(name+" scales", func(t *testing.T) {
			// docker compose up --scale NAME=N: a fixed container name or
			// host port allows only one container, and instances that
			// share a data directory share its instance id (and so fence
			// each other).
			if sl.ContainerName != "" {
				t.Errorf("%s: container_name %q allows only one container; --scale needs none", name, sl.ContainerName)
			}
			if len(sl.Ports) > 0 {
				t.Errorf("%s: published ports allow only one container; --scale needs none", name)
			}
			dataDir, _ := flagValue(cmd, "--data-dir")
			for _, n := range sl.Volumes {
				if v := parseVolume(t, n); v.target == dataDir && v.source != "" {
					t.Errorf("%s: line %d: %s %s on the data directory %s is shared by every instance under --scale, "+
						"and instances must not share one (the instance id and the stores are in it); use an anonymous volume (- %s)",
						name, v.line, v.typ, v.source, dataDir, dataDir)
				}
			}
		})
	}

	t.Run("stateloop runs the greeter's module", func(t *testing.T) {
		cmd := words(cf.Services["stateloop"].Command)
		file, ok := moduleFlag(cmd)
		if !ok {
			t.Fatalf("stateloop: command %q, want run -f /module/module.yaml ...", cmd)
		}
		host, ok := hostPath(t, cf.Services["stateloop"], file)
		if !ok {
			t.Fatalf("stateloop: -f %s is not in a bind mount of the service", file)
		}
		if want := filepath.Join("examples", "greeter-python", "module.yaml"); host != want {
			t.Errorf("stateloop: -f %s is %s of the repository, want %s", file, host, want)
		}
	})

	t.Run("bind mounts exist", func(t *testing.T) {
		for _, name := range keys(cf.Services) {
			for _, n := range cf.Services[name].Volumes {
				v := parseVolume(t, n)
				if v.typ != "bind" {
					continue
				}
				// Without the source, compose creates an empty directory
				// in its place.
				if _, err := os.Stat(filepath.Join(root, v.source)); err != nil {
					t.Errorf("%s: line %d: bind mount %s: %v", name, v.line, v.source, err)
				}
				if !strings.HasPrefix(v.source, "./") {
					t.Errorf("%s: line %d: bind mount %s, want a path in the repository, ./...", name, v.line, v.source)
				}
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
	// Once as `docker compose up` reads it, once with every profile (the
	// Go greeter's).
	for _, args := range [][]string{
		{"compose", "-f", "docker-compose.yml", "config", "-q"},
		{"compose", "-f", "docker-compose.yml", "--profile", "*", "config", "-q"},
	} {
		cmd := exec.Command("docker", args...)
		cmd.Dir = root
		// the checks above assume the defaults of ${VAR:-default}, and
		// no profiles chosen by the environment
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, "KAFKA_HOST_PORT=") || strings.HasPrefix(kv, "COMPOSE_PROFILES=")
		})
		line := "docker " + strings.Join(args, " ")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("%s: valid", line)
	}
}
