export async function soak() {
  throw new Error("soak: not yet");
}
