package sdkcache

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCachedInstallIsAtomic: an installation is used only once complete,
// an incomplete one is replaced, and a complete one is not installed
// again.
func TestCachedInstallIsAtomic(t *testing.T) {
	t.Setenv(EnvCache, t.TempDir())
	runs := 0
	install := func(tmp string) error {
		runs++
		return os.WriteFile(filepath.Join(tmp, "file"), []byte("x"), 0o644)
	}
	root := Root(t)
	// A leftover without the marker, as if a user deleted it.
	if err := os.MkdirAll(filepath.Join(root, "sdk-1", "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := Install(t, "test SDK", "sdk-1", install)
	if again := Install(t, "test SDK", "sdk-1", install); again != dir {
		t.Errorf("second install returned %s, want %s", again, dir)
	}
	if runs != 1 {
		t.Errorf("install ran %d times, want 1", runs)
	}
	if _, err := os.Stat(filepath.Join(dir, "junk")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the incomplete leftover was not replaced: %v", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names bytes.Buffer
	for _, e := range entries {
		names.WriteString(e.Name() + " ")
	}
	if len(entries) != 1 {
		t.Errorf("cache holds %s, want only sdk-1 (temporary directories removed)", names.String())
	}
}
