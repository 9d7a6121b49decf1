{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "hMww23iA4jGWS96oKcyW5AbGsYaCvFioEq9aAH9VUS3ZvQ3lgmsxW6tuDSs7oVIz58jkjzmF17aWfrbczpx2DA=="
}
