{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "ATTRlzXHYBPQnrwp42O4vqd7B+69NrVnAHdV9Fz8bf/9zhH4TtWXRs+2lchvbXvioh97Py9ufvjpmIj5okrsCQ=="
}
