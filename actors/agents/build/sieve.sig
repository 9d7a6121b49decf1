{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "xYsmm077kqOXfna0d0c54FuHLtLTuDqKfEjJVhPQH9co6E2JNZzNNbOaiLlk1MNSutlvPoFNOMROiE+DALaWCw=="
}
