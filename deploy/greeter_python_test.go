package deploy_test

// Static checks of what docker-compose.yml runs of the Python greeter
// (examples/greeter-python): its function service and image, and the
// module.yaml that the stateloop service runs it with.

import (
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/topology/module"
)

// pythonService is the compose service of the Python greeter's function
// service.
const pythonService = "greeter-python"

// pythonDir is the example's directory, the build context of its image.
var pythonDir = filepath.Join("examples", "greeter-python")

// pythonImage is what the checks of the example's Dockerfile found.
type pythonImage struct {
	host, port string // --host and --port of greeter.py in CMD
}

// checkPythonDockerfile checks examples/greeter-python/Dockerfile and its
// .dockerignore.
func checkPythonDockerfile(t *testing.T) pythonImage {
	t.Helper()
	name := filepath.Join(pythonDir, "Dockerfile")
	stages := parseDockerfile(t, string(readFile(t, name)))
	if len(stages) != 1 {
		t.Fatalf("%s: %d stages, want one", name, len(stages))
	}
	st := stages[0]
	// The brief of the example: python:3.11-slim, which the pins need
	// (multidict 7.2.1 needs Python 3.11 or later).
	if st.image != "python:3.11-slim" && st.image != "docker.io/library/python:3.11-slim" {
		t.Errorf("%s: FROM %s, want python:3.11-slim", name, st.image)
	}
	var img pythonImage
	var copyReq, pip, copyApp int
	user := ""
	var cmd []string
	var exposed []string
	ignore := parseDockerignore(string(readFile(t, filepath.Join(pythonDir, ".dockerignore"))))
	for i, in := range st.instr {
		switch in.cmd {
		case "COPY", "ADD":
			flags, srcs, _ := copyArgs(in)
			if flags["from"] != "" {
				continue
			}
			for _, src := range srcs {
				if _, err := os.Stat(filepath.Join(root, pythonDir, src)); err != nil {
					t.Errorf("%s line %d: %s %s: %v", name, in.line, in.cmd, src, err)
				}
				if ignored(ignore, src) {
					t.Errorf("%s line %d: %s %s: its .dockerignore leaves it out of the build context", name, in.line, in.cmd, src)
				}
			}
			switch {
			case slices.Equal(srcs, []string{"requirements.txt"}):
				copyReq = i + 1
			case slices.Contains(srcs, "greeter.py") || slices.Contains(srcs, "."):
				copyApp = i + 1
			}
		case "RUN":
			f := strings.Fields(in.args)
			if j := slices.Index(f, "install"); j > 0 && strings.Contains(f[j-1], "pip") {
				if r, ok := flagValue(f[j:], "-r"); !ok || r != "requirements.txt" {
					t.Errorf("%s line %d: RUN %s: want pip install -r requirements.txt (the pinned packages)", name, in.line, in.args)
				}
				pip = i + 1
			}
		case "CMD", "ENTRYPOINT":
			args, err := execForm(in)
			if err != nil {
				t.Error(err)
			}
			cmd = append(cmd, args...)
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		}
	}
	if copyReq == 0 || pip == 0 || copyApp == 0 || !(copyReq < pip && pip < copyApp) {
		t.Errorf("%s: want COPY requirements.txt, RUN pip install -r requirements.txt and COPY greeter.py, in that order, "+
			"so that the packages are a layer of their own (instructions %d, %d, %d)", name, copyReq, pip, copyApp)
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("%s: runs as root (USER %q); want a non-root user", name, user)
	}
	if len(cmd) < 2 || !strings.HasPrefix(path.Base(cmd[0]), "python") || cmd[1] != "greeter.py" {
		t.Errorf("%s: CMD %q, want python greeter.py ...", name, cmd)
	}
	img.host, _ = flagValue(cmd, "--host")
	img.port, _ = flagValue(cmd, "--port")
	if img.host != "0.0.0.0" {
		t.Errorf("%s: CMD %q: --host %q, want 0.0.0.0: greeter.py listens on 127.0.0.1 by default, which other containers cannot reach", name, cmd, img.host)
	}
	if _, err := strconv.Atoi(img.port); err != nil {
		t.Errorf("%s: CMD %q: --port %q, want a port", name, cmd, img.port)
	}
	if !slices.Contains(exposed, img.port) && !slices.Contains(exposed, img.port+"/tcp") {
		t.Errorf("%s: EXPOSE %q, want the port greeter.py listens on, %s", name, exposed, img.port)
	}
	return img
}

func TestPythonDockerfile(t *testing.T) {
	checkPythonDockerfile(t)
	// The image installs the example's requirements.txt; greeter.py serves
	// the route module.yaml calls and the one the health check asks.
	src := string(readFile(t, filepath.Join(pythonDir, "greeter.py")))
	for _, route := range []string{`web.post("/statefun"`, `web.get("/health"`} {
		if !strings.Contains(src, route) {
			t.Errorf("greeter.py has no route %s", route)
		}
	}
}

func TestComposeGreeterPython(t *testing.T) {
	cf := loadCompose(t)
	svc, ok := cf.Services[pythonService]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %s", pythonService)
	}
	img := checkPythonDockerfile(t)

	dir, dockerfile, ok := buildOf(t, svc)
	if !ok || dir != pythonDir || dockerfile != "Dockerfile" {
		t.Errorf("%s: build %s/%s (build: %v), want context %s with its Dockerfile", pythonService, dir, dockerfile, ok, pythonDir)
	}
	if svc.Image != "" {
		t.Errorf("%s: image %q: built locally, it needs no image name", pythonService, svc.Image)
	}
	// It listens where the image's CMD says, unless the service overrides
	// the command.
	host, port := img.host, img.port
	if cmd := words(svc.Command); len(cmd) > 0 {
		host, _ = flagValue(cmd, "--host")
		port, _ = flagValue(cmd, "--port")
	}
	if host != "0.0.0.0" {
		t.Errorf("%s: greeter.py --host %q, want 0.0.0.0 (reachable from the stateloop container)", pythonService, host)
	}
	if svc.Healthcheck == nil || svc.Healthcheck.Disable {
		t.Fatalf("%s: no healthcheck; stateloop waits for it to be healthy", pythonService)
	}
	test := strings.Join(words(svc.Healthcheck.Test), " ")
	if want := "http://127.0.0.1:" + port + "/health"; !strings.Contains(test, want) {
		t.Errorf("%s: healthcheck %q does not ask %s", pythonService, test, want)
	}
	if words(svc.Healthcheck.Test)[0] != "CMD" {
		t.Errorf("%s: healthcheck %q, want the exec form [\"CMD\", ...]", pythonService, test)
	}
	if svc.Restart != "unless-stopped" && svc.Restart != "always" {
		t.Errorf("%s: restart %q, want unless-stopped", pythonService, svc.Restart)
	}

	t.Run("module", func(t *testing.T) {
		sl := cf.Services["stateloop"]
		file, ok := moduleFlag(words(sl.Command))
		if !ok {
			t.Fatalf("stateloop: command %q has no -f", words(sl.Command))
		}
		host, ok := hostPath(t, sl, file)
		if !ok {
			t.Fatalf("stateloop: -f %s is not in a bind mount", file)
		}
		m, err := module.ParseFile(filepath.Join(root, host))
		if err != nil {
			t.Fatalf("stateloop: -f %s (%s): %v", file, host, err)
		}
		for _, w := range m.Warnings {
			t.Errorf("%s: %v", host, w)
		}
		// `stateloop run -f` has no Go functions: an endpoint serves every
		// target.
		if u := m.UnboundTargets(); len(u) > 0 {
			t.Errorf("%s: ingress targets %v are served by no endpoint", host, u)
		}
		if len(m.Ingresses) == 0 || len(m.Egresses) == 0 || len(m.Endpoints) == 0 {
			t.Errorf("%s: %d endpoints, %d ingresses, %d egresses; want the greeter's", host, len(m.Endpoints), len(m.Ingresses), len(m.Egresses))
		}

		// Every endpoint is a service that stateloop waits for, on the port
		// it listens on.
		deps := dependsOn(t, sl.DependsOn)
		for _, e := range m.Endpoints {
			u, err := url.Parse(e.URLPathTemplate)
			if err != nil {
				t.Errorf("%s: endpoint %s: %v", host, e.Functions, err)
				continue
			}
			name := serviceNamed(cf, u.Hostname())
			if name == "" {
				t.Errorf("%s: endpoint %s: host %s is no service of docker-compose.yml (%v)", host, e.Functions, u.Hostname(), keys(cf.Services))
				continue
			}
			if name == pythonService && u.Port() != port {
				t.Errorf("%s: endpoint %s: %s, but %s listens on port %s", host, e.Functions, e.URLPathTemplate, name, port)
			}
			if c := deps[name]; c != "service_healthy" {
				t.Errorf("stateloop: depends_on %s with condition %q, want service_healthy: it calls %s", name, c, e.URLPathTemplate)
			}
		}

		// The file's Kafka address is the one stateloop uses: the
		// listener of the compose network, the same as STATELOOP_BROKERS.
		env := environment(t, sl.Environment)[envBrokers]
		var addrs [][]string
		for _, in := range m.Ingresses {
			addrs = append(addrs, in.Address)
		}
		for _, e := range m.Egresses {
			addrs = append(addrs, e.Address)
		}
		for _, a := range addrs {
			if !slices.Equal(a, []string{"kafka:9092"}) {
				t.Errorf("%s: Kafka address %q, want kafka:9092, the listener of the compose network", host, a)
			}
			if env != "" && strings.Join(a, ",") != env {
				t.Errorf("%s: Kafka address %q, but stateloop's %s is %s", host, a, envBrokers, env)
			}
		}
	})

	t.Run("kafka creates the egress topics", func(t *testing.T) {
		// A StateFun egress names the topic of each record, so stateloop
		// creates no egress topic: Kafka must, on the first record.
		kenv := environment(t, cf.Services["kafka"].Environment)
		if v, ok := kenv["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]; ok && v != "true" {
			t.Errorf("kafka: KAFKA_AUTO_CREATE_TOPICS_ENABLE = %q: the topic greetings would never be created", v)
		}
	})
}

// serviceNamed returns the service that a host name reaches in the compose
// network: its service name, or its hostname.
func serviceNamed(cf composeFile, host string) string {
	if _, ok := cf.Services[host]; ok {
		return host
	}
	for _, name := range keys(cf.Services) {
		if cf.Services[name].Hostname == host {
			return name
		}
	}
	return ""
}
