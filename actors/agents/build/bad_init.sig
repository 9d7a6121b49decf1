{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "NZIL/cnONq/ofAGv2IPPxaXqAWIrEgbjz+erAEGYHuiTm63z66EgK0RilyuC9v1T0oBM+wLhyytTslRx2OCzDw=="
}
