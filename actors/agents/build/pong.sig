{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "0Vw6ngSuDvqPmpMAqFL5Ldcxy4MhGUqLjNl+KQ3+aGd3/aN8VeEbs3caKyL+3arvFv7BCAma28YRb8qGXjVbBg=="
}
