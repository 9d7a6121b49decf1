{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "pPbUcLMZ+5J5W6HIkZGijYDgykg+NYBSdQVm0TbSJ8fQ8QuAKNWsT97P5NKbZ4GXWxjNuDpzhY8Rm0cIYVJtAQ=="
}
