-----BEGIN PRIVATE KEY-----
not a real key
-----END PRIVATE KEY-----
