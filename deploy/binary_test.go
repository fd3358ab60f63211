package deploy_test

// The stateloop binary as the Dockerfile builds it, and the command lines
// that the Dockerfile and docker-compose.yml give it.

import (
	"bytes"
	"context"
	"debug/elf"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

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

	// every flag of the image's CMD and of the compose commands exists
	cf := loadCompose(t)
	commands := [][]string{checkDockerfile(t).cmd}
	services := stateloopServices(t, cf)
	for _, name := range services {
		commands = append(commands, words(cf.Services[name].Command))
	}
	for _, args := range commands {
		if len(args) < 2 || args[0] != "run" {
			t.Errorf("command %q: want run APP ... or run -f MODULE ...", args)
			continue
		}
		help := run(args[0], "--help")
		if _, ok := moduleFlag(args); !ok && !strings.Contains(help, "\n  "+args[1]+" ") {
			t.Errorf("command %q: %s is not a built-in application of stateloop run:\n%s", args, args[1], help)
		}
		for _, a := range args[1:] {
			if name, _, _ := strings.Cut(a, "="); strings.HasPrefix(name, "--") && !strings.Contains(help, " "+name+" ") {
				t.Errorf("command %q: stateloop run has no flag %s", args, name)
			}
		}
	}

	// Each compose command, run for real as its container would run it,
	// with its environment, the files its bind mounts show it and a
	// temporary data directory, gets as far as connecting to Kafka: its
	// flags parse, its module file loads and the application is valid. The
	// Kafka address is replaced by a closed port, so that it stops there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, name := range services {
		svc := cf.Services[name]
		args := slices.Clone(words(svc.Command))
		for i := 1; i < len(args); i++ {
			switch args[i-1] {
			case "--brokers":
				args[i] = closed
			case "--data-dir":
				args[i] = t.TempDir()
			case "-f", "--module":
				host, ok := hostPath(t, svc, args[i])
				if !ok {
					t.Errorf("%s: -f %s is not in a bind mount", name, args[i])
					continue
				}
				if args[i], err = filepath.Abs(filepath.Join(root, host)); err != nil {
					t.Fatal(err)
				}
			}
		}
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, envBrokers+"=") })
		for k, v := range environment(t, svc.Environment) {
			if k == envBrokers {
				v = closed
			}
			env = append(env, k+"="+v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
		err := cmd.Run()
		cancel()
		if want := "cannot connect to Kafka at " + closed; err == nil || !strings.Contains(out.String(), want) {
			t.Errorf("%s: stateloop %s: %v, want it to fail with %q, having parsed its flags and loaded its application; output:\n%s",
				name, strings.Join(args, " "), err, want, out.String())
		} else {
			t.Logf("%s: stateloop %s: stops at connecting to Kafka, as expected", name, strings.Join(args, " "))
		}
	}
}
