// The piscina peer's task: take one 64-byte message, hand back its first byte. Plain
// JavaScript so piscina can load it without a TypeScript loader.
export default function handle(message) {
  return message[0];
}
