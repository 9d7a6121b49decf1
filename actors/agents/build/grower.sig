{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "e9fizu2pOKVZReBV1r0N5F5h4erZSjX7MsfO2T3Am7kICDoAMs60UpmQ78WxKO9JhUvzrgCC9HGxMtR4ojxWDw=="
}
