{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "7HK0d9crWrl4m0+3bt2rD3Nk4uuAVITOMOQNbR2yFVxgdLq+s2XLuyPK3GaF4MuWodQCmt2W+ruR1oeopFO1Bw=="
}
