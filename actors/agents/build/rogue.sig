{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "ZAbciNUizJlpsGPMlW6AC30X9uYz5QuNUG1W+gqGRM2SvPhzNuP9WrvFhdpSvbKCUkHf9l5YgpUPA6kVljY9CA=="
}
