{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "vXXRqfBZnfcajFb21N/GdqBNrbwi31zTUr2GWgO4j5I4nKAsYTLevrq2XQWZxYS0O10imTp+CO+YsbjUI0YNAA=="
}
