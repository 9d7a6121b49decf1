{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "jA3MTOGWW6fgYGO33PV3c27qLnRBb4CJhUkcm8RkcsoJLvoFJApMngV2Y7fRgnE1Mvz5KvCeEc8X7N5T0CN7DQ=="
}
