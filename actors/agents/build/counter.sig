{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "CEK2ZVMEbhb4K6qDd1P0yQv2omEEdCaxGgn2fhLuul4nI8r4mggsRiGITjk3p8ccZQ9Dk9pWXZoABKy4fg1QCg=="
}
