{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "bXJHqDYFX5SPP74SN4OdvVMwwndJXZYmg0ckkblxXvQxjZvbmaMuPwoPGlsEixghlubgczcI0UIeacX6T+nSAQ=="
}
