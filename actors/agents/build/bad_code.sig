{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "6yOqRaoTtLE06yuUQzFsM53HyjD95SU+i2Cv8blHYvd91LAqEChzhrtULH9syHf+nVUwJ58SVttPQJhsZcJHAA=="
}
