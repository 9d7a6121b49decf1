{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "FmdN1A7UQfaymSILxBRZ7we+AHRQCCtCneIK+E43hlm9mPaZlyjjei67sLKNV11/PXAj4UolXFup1h3WLFtDCw=="
}
