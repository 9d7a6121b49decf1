{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "r0rTl0f0zIgcpAEzulclN6PFEYEr7El1bDG5XgGxJ+0BhtoI7yX80pZgkZtuplMWJiHNMUTOA8yaLL8buaqCDQ=="
}
