{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "gtS/KbTqD9BFi1kzt30U88R3qyx/Oj7oXw5P7t7AbK7g7OSGfSc6Fvpg4Tprd1Agtea6VAxqouYEMPDvsRjSCg=="
}
