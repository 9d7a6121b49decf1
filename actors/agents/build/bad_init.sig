{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "dVPuU63gjDyG9l+N3Y/ogGbeGl0EwSYRu+s/IKTjSgPctlV5xWWkyFloeI4/cCiJXqQtRfz4IQbbC0nNr0izCw=="
}
