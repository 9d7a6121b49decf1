{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "oQBCerk3TRi8gOwQg7xnPupu8v215gROmCzV2UemLEIE5j6d3tywrIAun/CLu81onE9atzTPmX6Q4wDQyQIqCQ=="
}
