package remote_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stateloop/stateloop/processor/remote"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate signed by ca and its key (PKCS#8), in PEM.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMutualTLS: an https endpoint that requires a client certificate,
// with its own CA for both sides.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	serverCA, clientCA := newCA(t, "server CA"), newCA(t, "client CA")
	srvCert, srvKey := serverCA.issue(t, "functions", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := clientCA.issue(t, "stateloop", x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "stateloop" {
			http.Error(w, "who are you", http.StatusForbidden)
			return
		}
		ok(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	srv.StartTLS()
	defer srv.Close()

	caFile := writeFile(t, "ca.pem", serverCA.pem)
	certFile, keyFile := writeFile(t, "client.pem", cliCert), writeFile(t, "client.key", cliKey)
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}", TLS: remote.TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}})
	if _, err := invoke(t, c); err != nil {
		t.Fatalf("Invoke with mutual TLS: %v", err)
	}

	// Without trusting the server's CA, or without a client certificate:
	// configuration errors, reported at once rather than retried for the
	// whole call timeout.
	for _, tc := range []struct {
		name string
		tls  remote.TLSConfig
		want string
	}{
		{"unknown CA", remote.TLSConfig{CertFile: certFile, KeyFile: keyFile}, "certificate"},
		{"no client certificate", remote.TLSConfig{CAFile: caFile}, "certificate"},
	} {
		c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}", TLS: tc.tls, CallTimeout: 5 * time.Second})
		start := time.Now()
		_, err := invoke(t, c)
		if err == nil {
			t.Fatalf("%s: Invoke succeeded", tc.name)
		}
		if !remote.IsPermanent(err) || errors.Is(err, remote.ErrCallTimeout) || time.Since(start) > 2*time.Second {
			t.Errorf("%s: got %v after %v, want a permanent error at once", tc.name, err, time.Since(start))
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("%s: error %q does not mention %q and the URL", tc.name, err, tc.want)
		}
	}
}
