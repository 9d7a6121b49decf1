{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "SBrSK5ttdbACDmYZFJrV4coSeydDRVkePmHyNfgW6O+0SIVJM2WJB9bot2XsbXuPzuu7Dc3/S8fwDJT/Rwx6CA=="
}
