{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "/Qe4CjTBhqKcB0yAwKGIi4iH0ZiFTjgugqELbH2bmKXmxQatHmEz+Q1w64ddKHCA1WA+9PAQz+PJR/tMX0NUBA=="
}
