{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "Wh70uuVkdxlcladQT4WkIJgrSeKclOtQK3v9lDhD77Be29lnt8lE02neDr2GWsYmOlpsL4m6W27yCVgKQd/+AA=="
}
