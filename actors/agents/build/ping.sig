{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "N/NtpU1AmOxZereAX9/IrDLZ9E3lXDYV8QQbO74id+Vpp84cDzVl6fc8oz7dSmgdRZmHVyp2W+wYyp8OAOh/Cw=="
}
