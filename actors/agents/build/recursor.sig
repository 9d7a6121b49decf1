{
  "algorithm": "ed25519",
  "keyId": "b38cca2f29653abe",
  "signature": "VdYTqzaW2njj7xvgOvbX0atxxPKdF7gcz6WgsHuFnUTzNVkQNlM4456t/pn4rtZHZ3H+qzyY3QpZu5BqDYm4AA=="
}
