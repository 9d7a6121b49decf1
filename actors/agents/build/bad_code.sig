{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "y5FZpA7qC0ylZXXEdCjRobHkxVY3BpmNsLaH2BtbLc3RGduII9bZSlAg5v+p8uI7kZRujuC3abwMec2nB4rzAQ=="
}
