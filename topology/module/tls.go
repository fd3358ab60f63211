package module

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

const resourceWant = `a file path, a file: URL or classpath:<path> (relative to the module file's directory)`

// tls reads the TLS keys of the async transport and checks that the files
// they name can be read.
func (c *component) tls(m mapping) TLS {
	var t TLS
	dst := map[string]*string{
		"trust_cacerts":       &t.TrustCACerts,
		"client_cert":         &t.ClientCert,
		"client_key":          &t.ClientKey,
		"client_key_password": &t.ClientKeyPassword,
	}
	for _, k := range []string{"trust_cacerts", "client_cert", "client_key", "client_key_password"} {
		if path, ok := c.resource(m.get(k)); ok {
			*dst[k] = path
		}
	}
	cert, key := m.get("client_cert"), m.get("client_key")
	switch {
	case cert.present() && !key.present():
		c.errorf(cert.key, cert.path, "set without client_key; mutual TLS needs both client_cert and client_key")
	case key.present() && !cert.present():
		c.errorf(key.key, key.path, "set without client_cert; mutual TLS needs both client_cert and client_key")
	case !key.present():
		if pw := m.get("client_key_password"); pw.present() {
			c.warnf(pw.key, pw.path, "ignored without client_cert and client_key")
		}
	}
	return t
}

var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]+):`)

// resource resolves a file named in the module the way StateFun's
// ResourceLocator does, with two stateloop rules: classpath:<p> is <p> in
// the module file's directory (the StateFun image puts that directory on
// the class path), and a relative path is relative to the module file's
// directory (StateFun: the JVM's working directory). The file must be
// readable.
func (c *component) resource(f field) (string, bool) {
	s, ok := c.str(f, resourceWant)
	if !ok {
		return "", false
	}
	var path string
	m := urlScheme.FindStringSubmatch(s)
	switch {
	case m == nil:
		path = s
	case strings.EqualFold(m[1], "classpath"):
		path = strings.TrimLeft(s[len(m[0]):], "/")
		if path == "" {
			c.errorf(f.node, f.path, "%q names no file; want %s", s, resourceWant)
			return "", false
		}
	case strings.EqualFold(m[1], "file"):
		u, err := url.Parse(s)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			c.errorf(f.node, f.path, "%q is not a local file URL; want %s", s, resourceWant)
			return "", false
		}
		path = u.Path
		if u.Opaque != "" { // file:relative/path
			path, _ = url.PathUnescape(u.Opaque)
		}
	default:
		c.errorf(f.node, f.path, "%q: scheme %s is not supported; want %s", s, m[1], resourceWant)
		return "", false
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.p.dir, path)
	}
	if err := readable(path); err != nil {
		msg := "cannot read %q"
		if path != s {
			msg += " (" + path + ")"
		}
		msg += ": %v"
		if strings.HasPrefix(s, "~") {
			msg += "; ~ is not expanded (nor is it in StateFun)"
		}
		c.errorf(f.node, f.path, msg, s, err)
		return "", false
	}
	return path, true
}

// readable reports why a file cannot be read, or nil.
func readable(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}
